/** The PostgreSQL channel on which a change to a member's access is announced to every replica. */
export const MEMBER_CHANGES_CHANNEL = 'gatehouse_member_changes';

interface Queryable {
  query(sql: string, parameters?: unknown[]): Promise<unknown>;
}

/**
 * Announces, right after the write committed, that what decides a member's access changed (a key
 * revoked, the member disabled or enabled, an entitlement granted, changed or removed): every
 * replica's listener (libs/auth `MemberChangeListener`) drops the member from its caches. The
 * payload is the member id only. A failed announcement is not the write's failure: the write is
 * done, and the replicas' time-based caches (AUTH_STATE_CACHE_SECONDS) still end it.
 */
export async function notifyMemberChanged(db: Queryable, memberId: string): Promise<void> {
  try {
    await db.query('SELECT pg_notify($1, $2)', [MEMBER_CHANGES_CHANNEL, memberId]);
  } catch {
    // See above: the fallback is the cache's expiry.
  }
}
