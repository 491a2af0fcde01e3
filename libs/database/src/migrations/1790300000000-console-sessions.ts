import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The support console's server-side state: staff sessions (keyed by the SHA-256 of the cookie's
 * secret, so a database read never yields a usable cookie) and pending OpenID Connect sign-ins
 * (state, nonce and PKCE verifier, kept minutes so an MFA prompt can finish). Staff are
 * identified by (issuer, subject), never by email.
 */
export class ConsoleSessions1790300000000 implements MigrationInterface {
  name = 'ConsoleSessions1790300000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`CREATE TABLE console_sessions (
      id_hash text PRIMARY KEY,
      issuer text NOT NULL,
      subject text NOT NULL,
      display_name text NOT NULL,
      role text NOT NULL CHECK (role IN ('admin', 'support')),
      csrf_token text NOT NULL,
      created_at timestamptz NOT NULL,
      last_seen_at timestamptz NOT NULL,
      expires_at timestamptz NOT NULL
    )`);
    await q.query(`CREATE INDEX console_sessions_expires_idx ON console_sessions (expires_at)`);
    await q.query(`CREATE TABLE console_logins (
      id_hash text PRIMARY KEY,
      state text NOT NULL,
      nonce text NOT NULL,
      code_verifier text NOT NULL,
      expires_at timestamptz NOT NULL
    )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE console_logins`);
    await q.query(`DROP TABLE console_sessions`);
  }
}
