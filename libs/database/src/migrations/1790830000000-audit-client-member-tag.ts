import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The opaque member tag a mirror Gatehouse sends with its requests (X-Gatehouse-Member-Tag), in
 * its own column: recorded only on requests whose credentials this gateway accepted, so support
 * here can group a mirror's requests by the mirror's member without learning who it is. Indexed
 * like client_request_id, for `gatehouse audit --member-tag`.
 */
export class AuditClientMemberTag1790830000000 implements MigrationInterface {
  name = 'AuditClientMemberTag1790830000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE audit_events ADD COLUMN client_member_tag text NULL`);
    await q.query(
      `CREATE INDEX audit_events_client_member_tag_idx ON audit_events (client_member_tag) WHERE client_member_tag IS NOT NULL`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX audit_events_client_member_tag_idx`);
    await q.query(`ALTER TABLE audit_events DROP COLUMN client_member_tag`);
  }
}
