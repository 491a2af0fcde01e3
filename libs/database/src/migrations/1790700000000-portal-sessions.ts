import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The customer portal's sessions: one member signed in with one access key. Keyed by the SHA-256
 * of the cookie's secret (a database read never yields a usable cookie); deleting the member or
 * the key deletes its sessions.
 */
export class PortalSessions1790700000000 implements MigrationInterface {
  name = 'PortalSessions1790700000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`CREATE TABLE portal_sessions (
      id_hash text PRIMARY KEY,
      member_id uuid NOT NULL REFERENCES members (id) ON DELETE CASCADE,
      access_key_id uuid NOT NULL REFERENCES access_keys (id) ON DELETE CASCADE,
      csrf_token text NOT NULL,
      created_at timestamptz NOT NULL,
      last_seen_at timestamptz NOT NULL,
      expires_at timestamptz NOT NULL
    )`);
    await q.query(`CREATE INDEX portal_sessions_expires_idx ON portal_sessions (expires_at)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE portal_sessions`);
  }
}
