import { Injectable } from '@nestjs/common';
import { GatewayConfig } from '@gatehouse/config';
import {
  AccessKey,
  accessKeyUnusableReason,
  AccessKeyService,
  CredentialFailureReason,
  Member,
} from '@gatehouse/members';
import { Clock } from '@gatehouse/observability';

export type PrincipalState =
  { ok: true; member: Member; accessKey: AccessKey } | { ok: false; reason: CredentialFailureReason };

interface Entry {
  at: number;
  state: Promise<{ member: Member; accessKey: AccessKey } | null>;
}

/**
 * Whether the member and access key behind an issued token are still good, cached in memory for
 * AUTH_STATE_CACHE_SECONDS (≤ 10). Every /v2/ request consults it, so disabling a member or
 * revoking a key ends already-issued tokens within that time without a query per request.
 * Expiry is compared with the clock on every call, not only when the entry is loaded. With
 * several replicas, `MemberChangeListener` drops a member's entries as soon as any replica
 * announces a change, and shortens the cache while it cannot listen.
 */
@Injectable()
export class MemberStateCache {
  private readonly entries = new Map<string, Entry>();
  private ttlMs: number;
  private readonly configuredTtlMs: number;

  constructor(
    private readonly keys: AccessKeyService,
    private readonly clock: Clock,
    config: GatewayConfig,
  ) {
    this.ttlMs = this.configuredTtlMs = config.auth.stateCacheSeconds * 1000;
  }

  async get(memberId: string, accessKeyId: string): Promise<PrincipalState> {
    const loaded = await this.load(memberId, accessKeyId);
    if (!loaded) return { ok: false, reason: 'bad_credentials' };
    const { member, accessKey } = loaded;
    if (member.status !== 'active') return { ok: false, reason: 'member_disabled' };
    const unusable = accessKeyUnusableReason(accessKey, this.clock.date());
    if (unusable) return { ok: false, reason: unusable };
    return { ok: true, member, accessKey };
  }

  invalidate(): void {
    this.entries.clear();
  }

  /** Drops every entry of a member (a change announced by a replica). */
  forgetMember(memberId: string): void {
    const prefix = `${memberId}/`;
    for (const key of this.entries.keys()) if (key.startsWith(prefix)) this.entries.delete(key);
  }

  /**
   * While the change listener is down, entries are kept at most `ms` (the short cache), not
   * AUTH_STATE_CACHE_SECONDS; null restores the configured time.
   */
  shortenCache(ms: number | null): void {
    this.ttlMs = ms === null ? this.configuredTtlMs : Math.min(ms, this.configuredTtlMs);
  }

  private load(memberId: string, accessKeyId: string): Entry['state'] {
    const key = `${memberId}/${accessKeyId}`;
    const nowMs = this.clock.now();
    const hit = this.entries.get(key);
    if (hit && nowMs - hit.at < this.ttlMs) return hit.state;
    // Concurrent requests for the same token share one query.
    const state = this.keys
      .checkById(accessKeyId, memberId)
      .then((check) =>
        check.member && check.accessKey ? { member: check.member, accessKey: check.accessKey } : null,
      );
    if (this.ttlMs > 0) {
      if (this.entries.size > 10_000) this.sweep(nowMs);
      this.entries.set(key, { at: nowMs, state });
      state.catch(() => this.entries.delete(key));
    }
    return state;
  }

  private sweep(nowMs: number): void {
    for (const [k, e] of this.entries) if (nowMs - e.at >= this.ttlMs) this.entries.delete(k);
  }
}
