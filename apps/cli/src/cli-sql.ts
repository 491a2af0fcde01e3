import type { Client } from 'pg';

/** One parameterised statement and its rows: how the read-only commands reach the database. */
export type SqlRunner = (sql: { text: string; values: unknown[] }) => Promise<Array<Record<string, unknown>>>;

/**
 * A bare `pg` connection for the read-only commands: no Nest context and no TypeORM metadata,
 * which cost a short-lived CLI process ~10x more than its one SELECT (dev-docs/decisions.md,
 * "CLI start"). Options as the gateway's pool (data-source-options.ts): fail fast on a dead address.
 */
export async function connectSql(url: string): Promise<{ run: SqlRunner; close: () => Promise<void> }> {
  const { Client: PgClient } = await import('pg');
  const client: Client = new PgClient({ connectionString: url, connectionTimeoutMillis: 10_000 });
  // A connection lost between statements: the next statement fails with the cause; no crash here.
  client.on('error', () => undefined);
  await client.connect();
  return {
    run: async (sql) => (await client.query(sql.text, sql.values)).rows as Array<Record<string, unknown>>,
    close: () => client.end().catch(() => undefined),
  };
}

/**
 * Names of the migrations this build has that the database has not applied. Booting the Nest
 * context applies them (DATABASE_MIGRATE_ON_START), so with any pending the command takes that
 * path, as before.
 */
export async function pendingMigrationNames(run: SqlRunner): Promise<string[]> {
  const { MIGRATIONS, MIGRATIONS_TABLE } = await import('@gatehouse/database/lean');
  const [{ exists }] = await run({
    text: `SELECT to_regclass(current_schema() || '.' || quote_ident($1)) IS NOT NULL AS exists`,
    values: [MIGRATIONS_TABLE],
  });
  const applied = new Set(
    exists
      ? (await run({ text: `SELECT name FROM "${MIGRATIONS_TABLE}"`, values: [] })).map((r) => r.name)
      : [],
  );
  return MIGRATIONS.map((M) => new M().name ?? M.name).filter((name) => !applied.has(name));
}
