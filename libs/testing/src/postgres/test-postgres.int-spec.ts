import { Client } from 'pg';
import { MIGRATIONS } from '@gatehouse/database';
import { createTestDatabase, TEST_PG_URL_ENV } from './test-postgres';

async function query(url: string, sql: string): Promise<Array<Record<string, unknown>>> {
  const c = new Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query(sql)).rows;
  } finally {
    await c.end();
  }
}

describe('test PostgreSQL', () => {
  it('is started once by the global setup and published to the workers', () => {
    expect(process.env[TEST_PG_URL_ENV]).toMatch(/^postgres(ql)?:\/\//);
  });

  it('gives each suite its own migrated database and drops it again', async () => {
    const a = await createTestDatabase();
    const b = await createTestDatabase();
    try {
      expect(a.name).not.toBe(b.name);
      expect(await query(a.url, 'SELECT name FROM migrations ORDER BY id')).toEqual(
        MIGRATIONS.map((m) => ({ name: m.name })),
      );
      await query(a.url, `INSERT INTO members (username) VALUES ('only-in-a')`);
      expect(await query(b.url, 'SELECT count(*)::int AS n FROM members')).toEqual([{ n: 0 }]);
    } finally {
      await a.drop();
      await b.drop();
    }
    const left = await query(
      process.env[TEST_PG_URL_ENV]!,
      `SELECT datname FROM pg_database WHERE datname IN ('${a.name}', '${b.name}')`,
    );
    expect(left).toEqual([]);
  });

  it('can leave a database unmigrated for migration tests', async () => {
    const db = await createTestDatabase({ migrate: false });
    try {
      expect(await query(db.url, `SELECT to_regclass('members') IS NULL AS empty`)).toEqual([
        { empty: true },
      ]);
    } finally {
      await db.drop();
    }
  });
});
