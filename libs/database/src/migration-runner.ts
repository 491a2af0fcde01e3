import { DataSource } from 'typeorm';

/** Names of the migrations not yet applied, oldest first. */
export async function pendingMigrations(dataSource: DataSource): Promise<string[]> {
  const executed = new Set(
    (await tableExists(dataSource, dataSource.options.migrationsTableName ?? 'migrations'))
      ? (
          await dataSource.query<Array<{ name: string }>>(
            `SELECT name FROM "${dataSource.options.migrationsTableName ?? 'migrations'}"`,
          )
        ).map((r) => r.name)
      : [],
  );
  return dataSource.migrations.map((m) => m.name ?? m.constructor.name).filter((name) => !executed.has(name));
}

/** Applies pending migrations, each in its own transaction; returns the names applied, in order. */
export async function runMigrations(dataSource: DataSource): Promise<string[]> {
  const applied = await dataSource.runMigrations({ transaction: 'each' });
  return applied.map((m) => m.name);
}

async function tableExists(dataSource: DataSource, table: string): Promise<boolean> {
  const rows = await dataSource.query<Array<{ exists: boolean }>>(
    `SELECT to_regclass(current_schema() || '.' || quote_ident($1)) IS NOT NULL AS exists`,
    [table],
  );
  return rows[0]?.exists === true;
}
