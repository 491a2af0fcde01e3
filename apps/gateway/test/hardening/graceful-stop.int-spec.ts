import { createHash } from 'node:crypto';
import { chmod, mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Client } from 'pg';
import { request } from 'undici';
import { EntitlementService } from '@gatehouse/entitlements';
import { AccessKeyService, MemberService } from '@gatehouse/members';
import { createTestDatabase, TestDatabase } from '@gatehouse/testing';
import { BuiltGateway, createTestGateway, startBuiltGateway } from '@gatehouse/testing/gateway';
import {
  ForgejoFront,
  generatePat,
  getFreePort,
  makeTempDir,
  prepareSeededStorage,
  RegistryProcess,
  SeedInfo,
  seedImage,
  startForgejoFront,
  startRegistry,
  TempDir,
} from '@gatehouse/testing/upstream';
import { NO_RATE_LIMITS } from './hardening-stack';

describe('the built gateway on SIGTERM and on restart', () => {
  let seed: SeedInfo;
  let registry: RegistryProcess;
  let front: ForgejoFront;
  let db: TestDatabase;
  let tmp: TempDir;
  let dataDir: string;
  let basic: string;
  let username: string;
  const pat = generatePat('graceful-stop');

  const env = (port: number): Record<string, string> => ({
    PORT: String(port),
    HOST: '127.0.0.1',
    DATA_DIR: dataDir,
    DATABASE_URL: db.url,
    FORGEJO_BASE_URL: front.url,
    FORGEJO_API_TOKEN: pat,
    FORGEJO_API_USERNAME: 'gatehouse',
    OCI_REGISTRY_SERVICE: `127.0.0.1:${port}`,
    OCI_REGISTRY_REALM: `http://127.0.0.1:${port}/auth/token`,
    UPSTREAM_RETRIES: '0',
    LOG_LEVEL: 'info',
    ...NO_RATE_LIMITS,
  });

  const start = async (): Promise<BuiltGateway & { port: number; url: string }> => {
    const port = await getFreePort();
    const gw = startBuiltGateway(env(port));
    const url = `http://127.0.0.1:${port}`;
    await gw.waitUntilHealthy(url);
    return { ...gw, port, url };
  };

  beforeAll(async () => {
    seed = await prepareSeededStorage();
    registry = await startRegistry({ copyFrom: seed.storageDir });
    front = await startForgejoFront({
      upstreamUrl: registry.url,
      knownOwners: ['acme'],
      tokens: { [pat]: { scopes: ['read:package'] } },
    });
    db = await createTestDatabase();
    tmp = await makeTempDir('graceful');
    await chmod(tmp.path, 0o755);
    dataDir = join(tmp.path, 'data');
    // Enrol the member through the libraries on the same database and DATA_DIR (the access-key
    // secret lives there), then let the built gateway serve it.
    const setup = await createTestGateway({ databaseUrl: db.url, dataDir });
    username = 'sigterm-member';
    await setup.app.get(MemberService).create(username);
    const { key } = await setup.app.get(AccessKeyService).create(username, { name: 't' });
    await setup.app.get(EntitlementService).grant(username, 'acme/big', ['*']);
    await setup.close();
    basic = 'Basic ' + Buffer.from(`${username}:${key}`).toString('base64');
  });

  afterAll(async () => {
    await front?.stop();
    await registry?.stop();
    await db?.drop();
    await tmp?.cleanup();
  });

  it('finishes a transfer in flight after SIGTERM, flushes its audit row and exits 0', async () => {
    const gw = await start();
    try {
      const tokenRes = await fetch(
        `${gw.url}/auth/token?service=127.0.0.1:${gw.port}&scope=repository:acme/big:pull`,
        {
          headers: { authorization: basic },
        },
      );
      expect(tokenRes.status).toBe(200);
      const { token } = (await tokenRes.json()) as { token: string };
      const big = seedImage(seed, 'acme/big', '1.0').manifests[0].layers[0];
      const m = await fetch(`${gw.url}/v2/acme/big/manifests/1.0`, {
        headers: { authorization: `Bearer ${token}` },
      });
      expect(m.status).toBe(200);
      await m.arrayBuffer();

      const res = await request(`${gw.url}/v2/acme/big/blobs/${big.digest}`, {
        headers: { authorization: `Bearer ${token}` },
      });
      expect(res.statusCode).toBe(200);
      const hash = createHash('sha256');
      let bytes = 0;
      let signalledAt = 0;
      for await (const chunk of res.body) {
        hash.update(chunk as Buffer);
        bytes += (chunk as Buffer).length;
        if (!signalledAt && bytes > 1024 * 1024) {
          signalledAt = Date.now();
          gw.child.kill('SIGTERM');
          // A slow client: the response stays in flight for seconds after the signal.
          await new Promise((r) => setTimeout(r, 2000));
        }
      }
      expect(signalledAt).toBeGreaterThan(0);
      expect(bytes).toBe(big.size);
      expect('sha256:' + hash.digest('hex')).toBe(big.digest);

      // New work is refused while draining (connection refused or 503), the process exits 0.
      const late = await fetch(`${gw.url}/healthz`).then(
        (r) => r.status,
        () => 'refused',
      );
      expect([503, 'refused']).toContain(late);
      expect(await gw.exited).toBe(0);
      // Well inside the 25 s grace period.
      expect(Date.now() - signalledAt).toBeLessThan(20_000);

      const client = new Client({ connectionString: db.url });
      await client.connect();
      try {
        const { rows } = await client.query<{ action: string; outcome: string; bytes: string }>(
          'SELECT action, outcome, bytes FROM audit_events WHERE username = $1 AND action = $2',
          [username, 'blob.get'],
        );
        expect(rows.map((r) => [r.outcome, Number(r.bytes)])).toEqual([['allowed', big.size]]);
      } finally {
        await client.end();
      }
    } finally {
      if (gw.child.exitCode === null) gw.child.kill('SIGKILL');
      await gw.exited;
    }
  });

  it('removes temp files a crash left behind when it starts again', async () => {
    const cache = join(dataDir, 'cache');
    await mkdir(join(cache, 'tmp'), { recursive: true });
    await mkdir(join(cache, 'manifests', 'tmp'), { recursive: true });
    await writeFile(join(cache, 'tmp', `${'cd'.repeat(8)}-crash.partial`), Buffer.alloc(4096));
    await writeFile(join(cache, 'manifests', 'tmp', 'crash'), 'half');
    const gw = await start();
    try {
      expect(await readdir(join(cache, 'tmp'))).toEqual([]);
      expect(await readdir(join(cache, 'manifests', 'tmp'))).toEqual([]);
    } finally {
      gw.child.kill('SIGTERM');
      expect(await gw.exited).toBe(0);
    }
  });
});
