import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Client } from 'pg';
import { EntitlementService } from '@gatehouse/entitlements';
import { AccessKeyService, MemberService } from '@gatehouse/members';
import {
  BuiltGateway,
  createTestGateway,
  startBuiltGateway,
  startStoppablePostgres,
  StoppablePostgres,
} from '@gatehouse/testing/gateway';
import {
  ForgejoFront,
  generatePat,
  getFreePort,
  prepareSeededStorage,
  RegistryProcess,
  startForgejoFront,
  startRegistry,
} from '@gatehouse/testing/upstream';
import { NO_RATE_LIMITS } from './hardening-stack';

type Running = BuiltGateway & { url: string; port: number };

/**
 * Audit rows acknowledged to the disk spool survive SIGKILL: PostgreSQL (a cluster of its own)
 * stops, pulls go on from cached state and their rows go to the spool, the built gateway is
 * killed; PostgreSQL returns, and restarts killed again around the replay (as soon as the
 * gateway answers, and one second after its start) end with every row present exactly once.
 */
describe('SIGKILL with audit rows in the spool and mid-replay', () => {
  let pg: StoppablePostgres;
  let registry: RegistryProcess;
  let front: ForgejoFront;
  let basic: string;
  const pat = generatePat('audit-sigkill');
  const dataDir = () => join(pg.dir, 'data');

  function spawnGateway(port: number): BuiltGateway {
    return startBuiltGateway({
      PORT: String(port),
      HOST: '127.0.0.1',
      DATA_DIR: dataDir(),
      DATABASE_URL: pg.url,
      FORGEJO_BASE_URL: front.url,
      FORGEJO_API_TOKEN: pat,
      FORGEJO_API_USERNAME: 'gatehouse',
      OCI_REGISTRY_SERVICE: `127.0.0.1:${port}`,
      OCI_REGISTRY_REALM: `http://127.0.0.1:${port}/auth/token`,
      // Cached member state (≤ 10 s) and manifests keep pulls going a while after the database goes;
      // later ones are refused with 503. Each is an audit row either way.
      AUTH_STATE_CACHE_SECONDS: '10',
      OCI_TAG_TTL_SECONDS: '300',
      UPSTREAM_RETRIES: '0',
      LOG_LEVEL: 'warn',
      ...NO_RATE_LIMITS,
    });
  }

  async function start(): Promise<Running> {
    const port = await getFreePort();
    const gw = spawnGateway(port);
    const url = `http://127.0.0.1:${port}`;
    await gw.waitUntilHealthy(url);
    return { ...gw, url, port };
  }

  async function kill(gw: BuiltGateway): Promise<void> {
    gw.child.kill('SIGKILL');
    await gw.exited;
  }

  /** The text of every spool segment (JSON lines). */
  async function spooled(): Promise<string> {
    const dir = join(dataDir(), 'audit-spool');
    const names = await readdir(dir).catch(() => [] as string[]);
    const texts = await Promise.all(names.map((n) => readFile(join(dir, n), 'utf8').catch(() => '')));
    return texts.join('\n');
  }

  beforeAll(async () => {
    pg = await startStoppablePostgres('audit-sigkill');
    const seed = await prepareSeededStorage();
    registry = await startRegistry({ copyFrom: seed.storageDir });
    front = await startForgejoFront({
      upstreamUrl: registry.url,
      knownOwners: ['acme'],
      tokens: { [pat]: { scopes: ['read:package'] } },
    });
    const setup = await createTestGateway({ databaseUrl: pg.url, dataDir: dataDir() });
    await setup.app.get(MemberService).create('spooled');
    const { key } = await setup.app.get(AccessKeyService).create('spooled', { name: 't' });
    await setup.app.get(EntitlementService).grant('spooled', 'acme/app', ['*']);
    await setup.close();
    basic = 'Basic ' + Buffer.from(`spooled:${key}`).toString('base64');
  });

  afterAll(async () => {
    await front?.stop();
    await registry?.stop();
    await pg?.close();
  });

  it('stores every spooled row exactly once after kills before and during the replay', async () => {
    const gw = await start();
    const tokenRes = await fetch(
      `${gw.url}/auth/token?service=127.0.0.1:${gw.port}&scope=repository:acme/app:pull`,
      {
        headers: { authorization: basic },
      },
    );
    const { token } = (await tokenRes.json()) as { token: string };
    const pull = async () => {
      const res = await fetch(`${gw.url}/v2/acme/app/manifests/v1.0.0`, {
        headers: { authorization: `Bearer ${token}` },
      });
      await res.arrayBuffer();
      expect([200, 503]).toContain(res.status);
      return res.headers.get('x-request-id')!;
    };
    await pull();

    await pg.stop();
    const ids: string[] = [];
    for (let i = 0; i < 40; i++) ids.push(await pull());
    // Acknowledged to the spool: every row is on disk before the kill.
    const until = Date.now() + 30_000;
    for (;;) {
      const text = await spooled();
      if (ids.every((id) => text.includes(id))) break;
      if (Date.now() > until) throw new Error('the audit rows did not reach the spool within 30 s');
      await new Promise((r) => setTimeout(r, 200));
    }
    await kill(gw);

    await pg.start();
    // Killed as soon as it answers (the replay starts at start), then one second into a start.
    await kill(await start());
    const early = spawnGateway(await getFreePort());
    await new Promise((r) => setTimeout(r, 1_000));
    await kill(early);
    const last = await start();
    try {
      const db = new Client({ connectionString: pg.url });
      await db.connect();
      try {
        const deadline = Date.now() + 30_000;
        let counts = new Map<string, number>();
        for (;;) {
          const { rows } = await db.query<{ request_id: string; n: string }>(
            `SELECT request_id, count(*) AS n FROM audit_events WHERE request_id = ANY($1) GROUP BY request_id`,
            [ids],
          );
          counts = new Map(rows.map((r) => [r.request_id, Number(r.n)]));
          if (counts.size === ids.length || Date.now() > deadline) break;
          await new Promise((r) => setTimeout(r, 250));
        }
        expect(ids.filter((id) => counts.get(id) !== 1)).toEqual([]);
      } finally {
        await db.end();
      }
    } finally {
      await kill(last);
    }
  });
});
