import { DataSource } from 'typeorm';
import { AuditService } from '@gatehouse/audit';

interface Expiring {
  kind: 'entitlement' | 'key';
  id: string;
  memberId: string;
  username: string;
  repository: string | null;
  prefix: string | null;
  expiresAt: Date;
}

/**
 * Finds entitlements and access keys that expire within `days` and records one
 * `entitlement.expiring` audit row for each, once per expiry date: the notice row is claimed
 * first (`ON CONFLICT DO NOTHING`), so replicas scanning at once record it once. A new expiry date
 * (an extended entitlement) is noticed again.
 */
export class ExpiryScanner {
  constructor(
    private readonly db: DataSource,
    private readonly audit: AuditService,
    private readonly days: number,
  ) {}

  async scan(): Promise<number> {
    const rows: Expiring[] = await this.db.query(
      `SELECT 'entitlement' AS kind, e.id, e.member_id AS "memberId", m.username, e.repository,
              NULL AS prefix, e.expires_at AS "expiresAt"
         FROM entitlements e JOIN members m ON m.id = e.member_id
        WHERE e.expires_at > now() AND e.expires_at <= now() + make_interval(days => $1)
       UNION ALL
       SELECT 'key', k.id, k.member_id, m.username, NULL, k.prefix, k.expires_at
         FROM access_keys k JOIN members m ON m.id = k.member_id
        WHERE k.revoked_at IS NULL AND k.expires_at > now() AND k.expires_at <= now() + make_interval(days => $1)`,
      [this.days],
    );
    let noticed = 0;
    for (const r of rows) {
      const claimed: unknown[] = await this.db.query(
        `INSERT INTO event_expiry_notices (kind, target_id, expires_at) VALUES ($1, $2, $3)
         ON CONFLICT DO NOTHING RETURNING 1`,
        [r.kind, r.id, r.expiresAt],
      );
      if (claimed.length === 0) continue;
      const expiresAt = new Date(r.expiresAt);
      this.audit.record({
        action: 'entitlement.expiring',
        outcome: 'allowed',
        memberId: r.memberId,
        username: r.username,
        repository: r.repository,
        details: {
          kind: r.kind === 'key' ? 'access_key' : 'entitlement',
          expiresAt: expiresAt.toISOString(),
          daysLeft: Math.max(0, Math.ceil((expiresAt.getTime() - Date.now()) / 86_400_000)),
          ...(r.kind === 'key' ? { accessKeyId: r.id, accessKeyPrefix: r.prefix } : {}),
        },
      });
      noticed++;
    }
    return noticed;
  }
}
