import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { Client } from 'pg';
import { createTestDatabase, TestDatabase } from '@gatehouse/testing';

const root = path.resolve(__dirname, '../../../..');
const preload = path.join(__dirname, '../test/loaded-modules.preload.js');

/**
 * What the read-only commands must not load: the Nest context, TypeORM's metadata, and
 * class-validator's index with validator.js's index and libphonenumber-js (the environment takes its
 * decorators from their own modules, libs/config/src/validation.ts).
 */
const HEAVY =
  /[\\/](node_modules[\\/](@nestjs[\\/](core|common)|typeorm|validator[\\/]index\.js|libphonenumber-js|class-validator[\\/]cjs[\\/]index\.js)|dist[\\/]apps[\\/]cli[\\/]src[\\/]cli\.module\.js$)/;

/**
 * The built CLI's start: `--help` and `gatehouse audit` answer without the Nest application
 * context or TypeORM (they cost a short-lived process ~10x its one SELECT; dev-docs/decisions.md,
 * "CLI start"). The evidence is the spawned process's own require.cache, written at exit.
 */
describe('gatehouse CLI start (read-only commands stay lean)', () => {
  let db: TestDatabase;
  let dir: string;

  async function modulesLoadedBy(args: string[], env: Record<string, string>) {
    if (!fs.existsSync(path.join(root, 'dist/apps/cli/src/main.js')))
      throw new Error('dist/apps/cli/src/main.js is missing: run npm run build first (scripts/test.sh does)');
    const list = path.join(dir, `modules-${args[0]}-${Date.now()}.txt`);
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['-r', preload, path.join(root, 'bin/gatehouse.js'), ...args],
      {
        env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env, GATEHOUSE_TEST_LOADED_MODULES: list },
      },
    );
    const modules = fs.readFileSync(list, 'utf8').split('\n').filter(Boolean);
    return { stdout, modules, heavy: modules.filter((m) => HEAVY.test(m)) };
  }

  beforeAll(async () => {
    db = await createTestDatabase();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatehouse-cli-lean-'));
    const c = new Client({ connectionString: db.url });
    await c.connect();
    await c.query(
      `INSERT INTO audit_events (id, occurred_at, request_id, username, action, outcome)
       VALUES (gen_random_uuid(), now() - interval '1 hour', 'req-lean', 'dana', 'token.issue', 'allowed')`,
    );
    await c.end();
  });

  afterAll(async () => {
    await db?.drop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('prints the help without Nest or TypeORM', async () => {
    const run = await modulesLoadedBy(['--help'], {});
    expect(run.stdout).toMatch(/^\s+audit \[options\]/m);
    expect(run.heavy).toEqual([]);
  });

  it('answers `audit` over a bare connection, without Nest or TypeORM', async () => {
    const dataDir = path.join(dir, 'data');
    const run = await modulesLoadedBy(['audit', '--member', 'dana', '--since', '1d', '--format', 'json'], {
      DATABASE_URL: db.url,
      DATA_DIR: dataDir,
    });
    expect(JSON.parse(run.stdout)).toEqual([
      expect.objectContaining({ requestId: 'req-lean', username: 'dana' }),
    ]);
    expect(run.heavy).toEqual([]);
    // Read-only: no data directory made.
    expect(fs.existsSync(dataDir)).toBe(false);
  });

  it('still sees the Nest context where a command needs it (the check itself works)', async () => {
    const run = await modulesLoadedBy(['member', 'list', '--format', 'json'], {
      DATABASE_URL: db.url,
      DATA_DIR: path.join(dir, 'data'),
    });
    expect(JSON.parse(run.stdout)).toEqual([]);
    expect(run.heavy.some((m) => /@nestjs[\\/]core/.test(m))).toBe(true);
  });

  it('boots the Nest context when the database has migrations to apply, and applies them as before', async () => {
    const fresh = await createTestDatabase({ migrate: false });
    try {
      const run = await modulesLoadedBy(['audit', '--format', 'json'], {
        DATABASE_URL: fresh.url,
        DATA_DIR: path.join(dir, 'data'),
      });
      expect(JSON.parse(run.stdout)).toEqual([]);
      expect(run.heavy.some((m) => /typeorm/.test(m))).toBe(true);
    } finally {
      await fresh.drop();
    }
  });
});
