import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Client } from 'pg';
import { GatewayConfig, loadGatewayConfig } from '@gatehouse/config';
import { AppLogger, createPinoLogger } from '@gatehouse/observability';
import { EmbeddedOwnerFile, EmbeddedPostgresService, PostgresCluster } from '@gatehouse/database';

const logger = new AppLogger(createPinoLogger('silent'));

async function query<T>(url: string, sql: string): Promise<T[]> {
  const c = new Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query(sql)).rows as T[];
  } finally {
    await c.end();
  }
}

function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
  return Number(r.stdout.toString());
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('EmbeddedPostgresService', () => {
  let root: string;
  let config: GatewayConfig;
  const services: EmbeddedPostgresService[] = [];
  const service = () => {
    const s = new EmbeddedPostgresService(config, logger);
    services.push(s);
    return s;
  };

  beforeAll(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'gatehouse-embedded-'));
    fs.chmodSync(root, 0o755);
    config = loadGatewayConfig({ DATA_DIR: path.join(root, 'data') });
  });
  afterEach(async () => {
    for (const s of services.splice(0).reverse()) await s.stop();
  });
  afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

  it('initialises a cluster under DATA_DIR, creates the gatehouse database and publishes the owner file', async () => {
    const owner = service();
    const url = await owner.start();
    expect(owner.role).toBe('owner');
    expect(new URL(url).hostname).toBe('127.0.0.1');
    expect(new URL(url).pathname).toBe('/gatehouse');
    expect(fs.existsSync(path.join(config.database.embeddedDir, 'PG_VERSION'))).toBe(true);
    const file = JSON.parse(fs.readFileSync(owner.ownerFile, 'utf8')) as EmbeddedOwnerFile;
    expect(file).toMatchObject({ pid: process.pid, url });
    expect(await query(url, 'SELECT current_database() AS db')).toEqual([{ db: 'gatehouse' }]);

    await owner.stop();
    expect(fs.existsSync(owner.ownerFile)).toBe(false);
    await expect(query(url, 'SELECT 1')).rejects.toThrow();
  });

  it('lets a second instance join the live owner instead of starting a second server', async () => {
    const owner = service();
    const url = await owner.start();
    await query(url, 'CREATE TABLE IF NOT EXISTS marker (v int)');

    const second = service();
    expect(await second.start()).toBe(url);
    expect(second.role).toBe('client');
    // Stopping the client leaves the owner's server running.
    await second.stop();
    expect(await query(url, `SELECT to_regclass('marker') IS NOT NULL AS ok`)).toEqual([{ ok: true }]);
    await owner.stop();
  });

  it('restarts on the same data after a clean stop, keeping the data', async () => {
    const first = service();
    const url1 = await first.start();
    await query(url1, 'CREATE TABLE IF NOT EXISTS kept (v int); INSERT INTO kept VALUES (7)');
    await first.stop();

    const again = service();
    const url2 = await again.start();
    expect(again.role).toBe('owner');
    expect(await query(url2, 'SELECT v FROM kept')).toEqual([{ v: 7 }]);
  });

  it('recovers after its owner was killed: stale owner file and an orphaned server', async () => {
    // What kill -9 of the gateway leaves: postgres.json naming a dead process, and the server it
    // started still running on the data directory.
    const password = fs.readFileSync(path.join(root, 'data', 'postgres.password'), 'utf8').trim();
    const orphan = new PostgresCluster({ dataDir: config.database.embeddedDir, password });
    await orphan.start();
    const orphanPid = orphan.pid!;
    fs.writeFileSync(
      path.join(root, 'data', 'postgres.json'),
      JSON.stringify({ pid: deadPid(), url: orphan.url('gatehouse') } satisfies EmbeddedOwnerFile),
    );

    const restarted = service();
    const url = await restarted.start();
    expect(restarted.role).toBe('owner');
    expect(alive(orphanPid)).toBe(false);
    expect(await query(url, 'SELECT v FROM kept')).toEqual([{ v: 7 }]);
  });

  it('starts after the server itself was killed (postmaster.pid left behind)', async () => {
    const first = service();
    await first.start();
    const lock = path.join(config.database.embeddedDir, 'postmaster.pid');
    const postmasterPid = Number(fs.readFileSync(lock, 'utf8').split('\n')[0]);
    process.kill(postmasterPid, 'SIGKILL');
    while (alive(postmasterPid)) await new Promise((r) => setTimeout(r, 50));
    expect(fs.existsSync(lock)).toBe(true);
    await first.stop();
    // A crash also leaves the owner file behind.
    fs.writeFileSync(path.join(root, 'data', 'postgres.json'), JSON.stringify({ pid: deadPid(), url: null }));

    const second = service();
    const url = await second.start();
    expect(await query(url, 'SELECT v FROM kept')).toEqual([{ v: 7 }]);
  });

  it('names DATA_DIR and the fix when the data directory is not writable', async () => {
    const file = path.join(root, 'not-a-dir');
    fs.writeFileSync(file, '');
    const bad = new EmbeddedPostgresService(loadGatewayConfig({ DATA_DIR: path.join(file, 'data') }), logger);
    await expect(bad.start()).rejects.toThrow(/DATA_DIR .*not-a-dir\/data is not writable.*Fix: /);
  });
});
