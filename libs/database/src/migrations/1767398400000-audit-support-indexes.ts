import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Indexes for the support searches the initial schema did not cover: `--reason` and `--ip`.
 * Both lead with the filter and end with occurred_at DESC, so "newest N matching" reads N index
 * entries instead of walking the whole time index. Member, repository, request id and time were
 * already indexed. Partial: most rows have no reason, and those are never searched by reason.
 */
export class AuditSupportIndexes1767398400000 implements MigrationInterface {
  name = 'AuditSupportIndexes1767398400000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(
      `CREATE INDEX audit_events_reason_idx ON audit_events (reason, occurred_at DESC) WHERE reason IS NOT NULL`,
    );
    await q.query(`CREATE INDEX audit_events_client_ip_idx ON audit_events (client_ip, occurred_at DESC)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX audit_events_client_ip_idx`);
    await q.query(`DROP INDEX audit_events_reason_idx`);
  }
}
