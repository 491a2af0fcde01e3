import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Client } from 'pg';
import { freePort, MIGRATIONS } from '@gatehouse/database';
import { createTestDatabase, TestDatabase } from '@gatehouse/testing';
import { runCli } from '../cli';
import { captureIo } from '../test/capture-io';

const NAMES = MIGRATIONS.map((m) => m.name);

async function tableExists(url: string, table: string): Promise<boolean> {
  const c = new Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query(`SELECT to_regclass($1) IS NOT NULL AS ok`, [table])).rows[0].ok;
  } finally {
    await c.end();
  }
}

describe('gatehouse migrate', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase({ migrate: false });
  });
  afterAll(() => db?.drop());

  it('lists pending migrations with --dry-run and applies nothing', async () => {
    const io = captureIo();
    expect(await runCli(['migrate', '--dry-run'], io, { DATABASE_URL: db.url })).toBe(0);
    expect(io.out()).toBe(
      `${NAMES.length} pending migration${NAMES.length === 1 ? '' : 's'}:\n${NAMES.map((n) => `  ${n}\n`).join('')}`,
    );
    expect(await tableExists(db.url, 'members')).toBe(false);
  });

  it('applies the pending migrations and prints each', async () => {
    const io = captureIo();
    expect(await runCli(['migrate'], io, { DATABASE_URL: db.url })).toBe(0);
    for (const n of NAMES) expect(io.out()).toContain(`applied ${n}\n`);
    expect(await tableExists(db.url, 'audit_events')).toBe(true);
  });

  it('has nothing left to do the second time, in table or JSON format', async () => {
    const io = captureIo();
    expect(await runCli(['migrate'], io, { DATABASE_URL: db.url })).toBe(0);
    expect(io.out()).toBe('No pending migrations: the database schema is up to date.\n');
    const json = captureIo();
    expect(await runCli(['migrate', '--show', '--format', 'json'], json, { DATABASE_URL: db.url })).toBe(0);
    expect(JSON.parse(json.out())).toEqual({ pending: [] });
  });

  it('fails with one clean line and a non-zero exit when the database is unreachable', async () => {
    const url = `postgres://gatehouse:x@127.0.0.1:${await freePort()}/gatehouse`;
    const io = captureIo();
    expect(await runCli(['migrate'], io, { DATABASE_URL: url })).toBe(1);
    expect(io.err()).toMatch(
      /^error: Cannot connect to the database at 127\.0\.0\.1:\d+ \(connection refused\)\. Fix: check DATABASE_URL/,
    );
    expect(io.err().trim().split('\n')).toHaveLength(1);
    expect(io.out()).toBe('');

    const verbose = captureIo();
    expect(await runCli(['--verbose', 'migrate'], verbose, { DATABASE_URL: url })).toBe(1);
    expect(verbose.err()).toMatch(/\n\s+at /);
  });

  it('migrates the embedded PostgreSQL under DATA_DIR and stops it afterwards', async () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'gatehouse-cli-'));
    fs.chmodSync(root, 0o755);
    try {
      const env = { DATA_DIR: path.join(root, 'data') };
      const io = captureIo();
      expect(await runCli(['migrate'], io, env)).toBe(0);
      expect(io.out()).toContain(`applied ${NAMES[0]}`);
      expect(fs.existsSync(path.join(root, 'data', 'postgres.json'))).toBe(false);
      const again = captureIo();
      expect(await runCli(['migrate', '--dry-run'], again, env)).toBe(0);
      expect(again.out()).toMatch(/No pending migrations/);
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});
