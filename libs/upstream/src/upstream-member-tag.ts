import { createHmac } from 'node:crypto';
import { RequestContext } from '@gatehouse/observability';
import type { UpstreamTarget } from './upstream-failure.classifier';
import type { UpstreamKind } from './upstream-kind';

/** The header an upstream Gatehouse records as the audit row's `client_member_tag`. */
export const MEMBER_TAG_HEADER = 'x-gatehouse-member-tag';

/** What the key that tags members is derived for (from ACCESS_KEY_SECRET_FILE, see AccessKeyHasher). */
export const MEMBER_TAG_KEY_PURPOSE = 'upstream member tag';

/**
 * `m1-` and 32 hex digits: the first 128 bits of HMAC-SHA256(key, lowercase username). Stable for
 * a member across restarts and replicas (the key is derived from the shared access-key secret),
 * opaque upstream: without this gateway's secret it names nobody and cannot be tested against a
 * guessed username.
 */
export function memberTagOf(key: Buffer, username: string): string {
  return `m1-${createHmac('sha256', key).update(username.toLowerCase(), 'utf8').digest('hex').slice(0, 32)}`;
}

/**
 * The member tag header of an upstream request (UPSTREAM_SEND_MEMBER_TAG): only when enabled,
 * keyed, the upstream is another Gatehouse and the request is a member's; never to a storage
 * origin. The key is handed over once at start by the composition root (`useKey`).
 */
export class UpstreamMemberTag {
  private key: Buffer | null = null;

  constructor(
    private readonly enabled: boolean,
    private readonly kind: () => UpstreamKind,
  ) {}

  useKey(key: Buffer): void {
    this.key = key;
  }

  headers(target: UpstreamTarget): Record<string, string> {
    if (!this.enabled || !this.key || target === 'storage' || this.kind() !== 'gatehouse') return {};
    const username = RequestContext.current()?.username;
    return username ? { [MEMBER_TAG_HEADER]: memberTagOf(this.key, username) } : {};
  }
}
