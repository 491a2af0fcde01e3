import { MigrationInterface, QueryRunner } from 'typeorm';

/** The rollups' rows from a set of audit rows `src` (the trigger's new rows, or the whole table once). */
const ROLLUP_FROM = (src: string) => [
  `INSERT INTO audit_daily_served AS t (day, repository, username, pulls, downloads, bytes, cache_hits, cache_lookups)
   SELECT (occurred_at AT TIME ZONE 'UTC')::date, coalesce(repository, ''), coalesce(username, ''),
     count(*) FILTER (WHERE action = 'manifest.get'), count(*) FILTER (WHERE action = 'download'),
     coalesce(sum(bytes) FILTER (WHERE action <> 'manifest.get'), 0),
     count(*) FILTER (WHERE action = 'blob.get' AND cache = 'hit'),
     count(*) FILTER (WHERE action = 'blob.get' AND cache IS NOT NULL)
   FROM ${src} WHERE outcome = 'allowed' AND action IN ('manifest.get', 'blob.get', 'download')
   GROUP BY 1, 2, 3
   ON CONFLICT (day, repository, username) DO UPDATE SET pulls = t.pulls + excluded.pulls,
     downloads = t.downloads + excluded.downloads, bytes = t.bytes + excluded.bytes,
     cache_hits = t.cache_hits + excluded.cache_hits, cache_lookups = t.cache_lookups + excluded.cache_lookups`,
  `INSERT INTO audit_daily_refusals AS t (day, repository, username, reason, refusals)
   SELECT (occurred_at AT TIME ZONE 'UTC')::date, coalesce(repository, ''), coalesce(username, ''), reason, count(*)
   FROM ${src} WHERE outcome <> 'allowed' AND reason IS NOT NULL
   GROUP BY 1, 2, 3, 4
   ON CONFLICT (day, repository, username, reason) DO UPDATE SET refusals = t.refusals + excluded.refusals`,
  `INSERT INTO audit_daily_versions AS t (day, repository, username, reference, pulls, first_at, last_at)
   SELECT (occurred_at AT TIME ZONE 'UTC')::date, repository, username, reference, count(*),
     min(occurred_at), max(occurred_at)
   FROM ${src} WHERE outcome = 'allowed' AND action = 'manifest.get'
     AND repository IS NOT NULL AND username IS NOT NULL AND reference IS NOT NULL
   GROUP BY 1, 2, 3, 4
   ON CONFLICT (day, repository, username, reference) DO UPDATE SET pulls = t.pulls + excluded.pulls,
     first_at = least(t.first_at, excluded.first_at), last_at = greatest(t.last_at, excluded.last_at)`,
];

/**
 * Daily rollups of the audit log for the console's analytics: served requests, refusals by
 * reason and pulled versions per (day, repository, member). A statement-level trigger folds each
 * batch the audit writer inserts into them (one upsert per rollup per batch), so they are always
 * current; existing rows are folded in once here. Pruning old audit rows leaves the rollups.
 */
export class AuditDailyRollups1790300000001 implements MigrationInterface {
  name = 'AuditDailyRollups1790300000001';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`CREATE TABLE audit_daily_served (
      day date NOT NULL, repository text NOT NULL, username text NOT NULL,
      pulls bigint NOT NULL, downloads bigint NOT NULL, bytes bigint NOT NULL,
      cache_hits bigint NOT NULL, cache_lookups bigint NOT NULL,
      PRIMARY KEY (day, repository, username))`);
    await q.query(`CREATE TABLE audit_daily_refusals (
      day date NOT NULL, repository text NOT NULL, username text NOT NULL, reason text NOT NULL,
      refusals bigint NOT NULL,
      PRIMARY KEY (day, repository, username, reason))`);
    await q.query(`CREATE TABLE audit_daily_versions (
      day date NOT NULL, repository text NOT NULL, username text NOT NULL, reference text NOT NULL,
      pulls bigint NOT NULL, first_at timestamptz NOT NULL, last_at timestamptz NOT NULL,
      PRIMARY KEY (day, repository, username, reference))`);
    await q.query(
      `CREATE INDEX audit_daily_versions_repository_idx ON audit_daily_versions (repository, day)`,
    );
    await q.query(`CREATE FUNCTION audit_daily_rollup() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        ${ROLLUP_FROM('new_audit_rows').join(';\n')};
        RETURN NULL;
      END $$`);
    await q.query(`CREATE TRIGGER audit_daily_rollup AFTER INSERT ON audit_events
      REFERENCING NEW TABLE AS new_audit_rows FOR EACH STATEMENT EXECUTE FUNCTION audit_daily_rollup()`);
    for (const statement of ROLLUP_FROM('audit_events')) await q.query(statement);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TRIGGER audit_daily_rollup ON audit_events`);
    await q.query(`DROP FUNCTION audit_daily_rollup()`);
    await q.query(`DROP TABLE audit_daily_versions`);
    await q.query(`DROP TABLE audit_daily_refusals`);
    await q.query(`DROP TABLE audit_daily_served`);
  }
}
