import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * One row per gateway process, rewritten by its heartbeat every ~15 s: the console's health page
 * lists replicas seen in the last minute and those gone quiet. Quiet rows are pruned after a day.
 */
export class GatewayReplicas1790800000000 implements MigrationInterface {
  name = 'GatewayReplicas1790800000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`CREATE TABLE gateway_replicas (
      id text PRIMARY KEY,
      hostname text NOT NULL,
      pid integer NOT NULL,
      version text NOT NULL,
      listen_address text NOT NULL,
      started_at timestamptz NOT NULL,
      last_seen_at timestamptz NOT NULL
    )`);
    await q.query(`CREATE INDEX gateway_replicas_last_seen_idx ON gateway_replicas (last_seen_at)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE gateway_replicas`);
  }
}
