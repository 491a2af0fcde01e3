import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The client's own X-Request-Id in its own column. request_id is always minted by the gateway
 * (a client could send another request's id); client_request_id keeps what a proxy sent, for
 * correlation. Indexed like request_id, for "find the request my proxy logged as X".
 */
export class AuditClientRequestId1767484800000 implements MigrationInterface {
  name = 'AuditClientRequestId1767484800000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE audit_events ADD COLUMN client_request_id text NULL`);
    await q.query(
      `CREATE INDEX audit_events_client_request_id_idx ON audit_events (client_request_id) WHERE client_request_id IS NOT NULL`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX audit_events_client_request_id_idx`);
    await q.query(`ALTER TABLE audit_events DROP COLUMN client_request_id`);
  }
}
