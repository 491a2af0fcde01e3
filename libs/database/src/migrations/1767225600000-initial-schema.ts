import { MigrationInterface, QueryRunner } from 'typeorm';

/** Members, access keys, entitlements, the audit log and the blob cache index. */
export class InitialSchema1767225600000 implements MigrationInterface {
  name = 'InitialSchema1767225600000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE members (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        username text NOT NULL,
        status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
        note text NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        disabled_at timestamptz NULL
      )`);
    await q.query(`CREATE UNIQUE INDEX members_username_lower_key ON members (lower(username))`);

    await q.query(`
      CREATE TABLE access_keys (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        member_id uuid NOT NULL REFERENCES members (id) ON DELETE CASCADE,
        name text NULL,
        prefix text NOT NULL,
        key_hash text NOT NULL UNIQUE,
        created_at timestamptz NOT NULL DEFAULT now(),
        expires_at timestamptz NULL,
        last_used_at timestamptz NULL,
        revoked_at timestamptz NULL
      )`);
    await q.query(`CREATE INDEX access_keys_member_id_idx ON access_keys (member_id)`);

    await q.query(`
      CREATE TABLE entitlements (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        member_id uuid NOT NULL REFERENCES members (id) ON DELETE CASCADE,
        repository text NOT NULL,
        tag_rules text[] NOT NULL,
        expires_at timestamptz NULL,
        note text NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT entitlements_member_id_repository_key UNIQUE (member_id, repository)
      )`);
    await q.query(`CREATE INDEX entitlements_repository_idx ON entitlements (repository)`);

    // No foreign key to members: the audit history outlives a deleted member.
    await q.query(`
      CREATE TABLE audit_events (
        id uuid PRIMARY KEY,
        occurred_at timestamptz NOT NULL,
        request_id text NULL,
        member_id uuid NULL,
        username text NULL,
        client_ip text NULL,
        user_agent text NULL,
        action text NOT NULL,
        repository text NULL,
        reference text NULL,
        digest text NULL,
        outcome text NOT NULL,
        reason text NULL,
        http_status integer NULL,
        bytes bigint NULL,
        cache text NULL,
        duration_ms integer NULL,
        upstream_status integer NULL,
        details jsonb NULL
      )`);
    await q.query(`CREATE INDEX audit_events_occurred_at_idx ON audit_events (occurred_at DESC)`);
    await q.query(`CREATE INDEX audit_events_member_id_idx ON audit_events (member_id, occurred_at DESC)`);
    await q.query(`CREATE INDEX audit_events_username_idx ON audit_events (username, occurred_at DESC)`);
    await q.query(`CREATE INDEX audit_events_repository_idx ON audit_events (repository, occurred_at DESC)`);
    await q.query(`CREATE INDEX audit_events_request_id_idx ON audit_events (request_id)`);

    await q.query(`
      CREATE TABLE cached_blobs (
        digest text PRIMARY KEY,
        size_bytes bigint NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        last_accessed_at timestamptz NOT NULL DEFAULT now(),
        hit_count bigint NOT NULL DEFAULT 0
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE cached_blobs`);
    await q.query(`DROP TABLE audit_events`);
    await q.query(`DROP TABLE entitlements`);
    await q.query(`DROP TABLE access_keys`);
    await q.query(`DROP TABLE members`);
  }
}
