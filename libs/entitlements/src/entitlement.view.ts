import { Entitlement, isEntitlementLive } from './entitlement.entity';
import { formatTarget } from './entitlement.service';

/**
 * An entitlement as the CLI's json output and the admin API both print it; `live` is judged at
 * `now`, and `member` is null when the relation was not loaded.
 */
export function entitlementView(e: Entitlement, now: Date) {
  return {
    id: e.id,
    member: e.member?.username ?? null,
    kind: e.kind ?? 'image',
    repository: e.repository,
    target: formatTarget(e),
    tagRules: e.tagRules,
    expiresAt: e.expiresAt,
    live: isEntitlementLive(e, now),
    note: e.note,
    createdAt: e.createdAt,
    updatedAt: e.updatedAt,
  };
}
