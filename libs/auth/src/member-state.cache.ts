import { Injectable } from '@nestjs/common';
import { BoundedCache } from '@gatehouse/bounded-cache';
import { GatewayConfig } from '@gatehouse/config';
import { isDatabaseUnavailableError } from '@gatehouse/database';
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

type LoadedState = { member: Member; accessKey: AccessKey } | null;

/** Entries kept (least recently used dropped first). */
const MAX_ENTRIES = 10_000;

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
  private readonly entries: BoundedCache<string, LoadedState>;
  private readonly configuredTtlMs: number;

  constructor(
    private readonly keys: AccessKeyService,
    private readonly clock: Clock,
    config: GatewayConfig,
  ) {
    this.configuredTtlMs = config.auth.stateCacheSeconds * 1000;
    this.entries = new BoundedCache({
      max: MAX_ENTRIES,
      ttlMs: this.configuredTtlMs,
      // PostgreSQL away: the last state checked within the grace still answers (no revocation can
      // be committed while it is away); any other failure is thrown.
      staleIfErrorMs: (config.auth.outageGraceSeconds ?? 0) * 1000,
      staleOn: isDatabaseUnavailableError,
      now: () => clock.now(),
    });
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
    this.entries.ttlMs = ms === null ? this.configuredTtlMs : Math.min(ms, this.configuredTtlMs);
  }

  /** Concurrent requests for the same token share one query; none is cached with a zero TTL. */
  private async load(memberId: string, accessKeyId: string): Promise<LoadedState> {
    const query = async (): Promise<LoadedState> => {
      const check = await this.keys.checkById(accessKeyId, memberId);
      return check.member && check.accessKey ? { member: check.member, accessKey: check.accessKey } : null;
    };
    if (this.entries.ttlMs <= 0) return query();
    return (await this.entries.fetch(`${memberId}/${accessKeyId}`, query)).value;
  }
}
