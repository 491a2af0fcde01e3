import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { createDataSourceOptions, PostgresCluster, runMigrations } from '@gatehouse/database';

/** Set by the jest global setup: a superuser URL of the PostgreSQL shared by the whole run. */
export const TEST_PG_URL_ENV = 'GATEHOUSE_TEST_PG_URL';
/** Optional: an existing PostgreSQL (superuser URL) to use instead of starting an embedded one. */
export const EXTERNAL_TEST_PG_URL_ENV = 'TEST_DATABASE_URL';

export interface TestPostgres {
  adminUrl: string;
  /** True when TEST_DATABASE_URL was used (nothing to stop). */
  external: boolean;
  stop(): Promise<void>;
}

/**
 * The PostgreSQL server for one jest run: TEST_DATABASE_URL when set, otherwise one embedded
 * cluster in a temp directory on a free port. Publishes its URL in GATEHOUSE_TEST_PG_URL, which
 * the workers inherit.
 */
export async function startTestPostgres(): Promise<TestPostgres> {
  const external = process.env[EXTERNAL_TEST_PG_URL_ENV];
  if (external) {
    process.env[TEST_PG_URL_ENV] = external;
    return { adminUrl: external, external: true, stop: async () => undefined };
  }
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'gatehouse-test-pg-'));
  // As root the server runs as the `postgres` user, which must be able to enter the temp dir.
  fs.chmodSync(root, 0o755);
  const cluster = new PostgresCluster({
    dataDir: path.join(root, 'pgdata'),
    password: randomBytes(12).toString('hex'),
    // A throwaway cluster: durability only costs time.
    settings: { fsync: 'off', synchronous_commit: 'off', full_page_writes: 'off', max_connections: '300' },
  });
  try {
    await cluster.initialise();
    await cluster.start();
  } catch (e) {
    await cluster.stop().catch(() => undefined);
    fs.rmSync(root, { recursive: true, force: true });
    throw e;
  }
  const adminUrl = cluster.url('postgres');
  process.env[TEST_PG_URL_ENV] = adminUrl;
  return {
    adminUrl,
    external: false,
    stop: async () => {
      await cluster.stop();
      fs.rmSync(root, { recursive: true, force: true });
      delete process.env[TEST_PG_URL_ENV];
    },
  };
}

export interface TestDatabase {
  url: string;
  name: string;
  drop(): Promise<void>;
}

export function testPostgresAdminUrl(): string {
  const url = process.env[TEST_PG_URL_ENV];
  if (!url) {
    throw new Error(
      `${TEST_PG_URL_ENV} is not set: PostgreSQL tests must run in the jest "integration" project, whose global setup starts the server.`,
    );
  }
  return url;
}

/** A fresh, uniquely named database on the shared server, migrated unless `migrate: false`. */
export async function createTestDatabase(options: { migrate?: boolean } = {}): Promise<TestDatabase> {
  const adminUrl = testPostgresAdminUrl();
  const name = `gatehouse_test_${process.pid}_${randomBytes(4).toString('hex')}`;
  await adminQuery(adminUrl, `CREATE DATABASE "${name}"`);
  const u = new URL(adminUrl);
  u.pathname = `/${name}`;
  const url = u.toString();
  if (options.migrate ?? true) {
    const ds = await new DataSource(createDataSourceOptions(url, 2)).initialize();
    try {
      await runMigrations(ds);
    } finally {
      await ds.destroy();
    }
  }
  return {
    url,
    name,
    drop: () => adminQuery(adminUrl, `DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`),
  };
}

async function adminQuery(adminUrl: string, sql: string): Promise<void> {
  const client = new Client({ connectionString: adminUrl });
  client.on('error', () => undefined);
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}
