import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { createTestDatabase, TestDatabase } from '@gatehouse/testing';
import { createDataSourceOptions, MIGRATIONS, pendingMigrations, runMigrations } from '@gatehouse/database';

const TABLES = [
  'access_keys',
  'audit_daily_refusals',
  'audit_daily_served',
  'audit_daily_versions',
  'audit_events',
  'cached_blobs',
  'console_logins',
  'console_sessions',
  'entitlements',
  'event_expiry_notices',
  'event_outbox',
  'gateway_replicas',
  'members',
  'portal_sessions',
  'secret_fingerprints',
  'webhook_deliveries',
  'webhook_subscriptions',
];

async function tables(url: string): Promise<string[]> {
  const c = new Client({ connectionString: url });
  await c.connect();
  try {
    const { rows } = await c.query<{ table_name: string }>(
      `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_name <> 'migrations' ORDER BY 1`,
    );
    return rows.map((r) => r.table_name);
  } finally {
    await c.end();
  }
}

describe('migrations', () => {
  let db: TestDatabase;
  let ds: DataSource;

  beforeAll(async () => {
    db = await createTestDatabase({ migrate: false });
    ds = await new DataSource(createDataSourceOptions(db.url, 2)).initialize();
  });
  afterAll(async () => {
    await ds?.destroy();
    await db?.drop();
  });

  it('apply on a fresh database, creating exactly the schema tables', async () => {
    expect(await pendingMigrations(ds)).toEqual(MIGRATIONS.map((m) => m.name));
    const applied = await runMigrations(ds);
    expect(applied).toEqual(MIGRATIONS.map((m) => m.name));
    expect(await tables(db.url)).toEqual(TABLES);
    expect(await pendingMigrations(ds)).toEqual([]);
    expect(await runMigrations(ds)).toEqual([]);
  });

  it('enforce the schema rules: lowercase-unique usernames, status check, cascade, defaults', async () => {
    const [m] = await ds.query(
      `INSERT INTO members (username) VALUES ('alice') RETURNING id, status, created_at`,
    );
    expect(m.status).toBe('active');
    expect(m.created_at).toBeInstanceOf(Date);
    await expect(ds.query(`INSERT INTO members (username) VALUES ('ALICE')`)).rejects.toThrow(/unique/i);
    await expect(ds.query(`INSERT INTO members (username, status) VALUES ('bob', 'gone')`)).rejects.toThrow(
      /check/i,
    );
    await ds.query(
      `INSERT INTO entitlements (member_id, repository, tag_rules) VALUES ($1, 'acme/app', $2)`,
      [m.id, ['v1.*', 'semver:>=1.2.0 <2.0.0']],
    );
    const [e] = await ds.query(`SELECT tag_rules FROM entitlements WHERE member_id = $1`, [m.id]);
    expect(e.tag_rules).toEqual(['v1.*', 'semver:>=1.2.0 <2.0.0']);
    await expect(
      ds.query(`INSERT INTO entitlements (member_id, repository, tag_rules) VALUES ($1, 'acme/app', '{*}')`, [
        m.id,
      ]),
    ).rejects.toThrow(/unique/i);
    await ds.query(`INSERT INTO access_keys (member_id, prefix, key_hash) VALUES ($1, 'ghk_x', 'h1')`, [
      m.id,
    ]);
    await ds.query(`DELETE FROM members WHERE id = $1`, [m.id]);
    expect(await ds.query(`SELECT count(*)::int AS n FROM access_keys`)).toEqual([{ n: 0 }]);
    expect(await ds.query(`SELECT count(*)::int AS n FROM entitlements`)).toEqual([{ n: 0 }]);
  });

  it('revert completely with down', async () => {
    for (let i = 0; i < MIGRATIONS.length; i++) await ds.undoLastMigration({ transaction: 'each' });
    expect(await tables(db.url)).toEqual([]);
    expect(await pendingMigrations(ds)).toEqual(MIGRATIONS.map((m) => m.name));
    // And up again after down: the pair is symmetric.
    await runMigrations(ds);
    expect(await tables(db.url)).toEqual(TABLES);
  });
});
