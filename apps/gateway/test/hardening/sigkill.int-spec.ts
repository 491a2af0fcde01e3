import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
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
  SeedLayer,
  seedImage,
  startForgejoFront,
  startRegistry,
  TempDir,
} from '@gatehouse/testing/upstream';
import { NO_RATE_LIMITS } from './hardening-stack';

type Running = BuiltGateway & { url: string; port: number };

/**
 * The built gateway killed with SIGKILL at each step of a blob fill and commit: before the first
 * byte, mid-body, at the client's last byte (before the rename) and a few milliseconds after it
 * (rename, index update). After each kill it restarts on the same cache, database and DATA_DIR:
 * no temp file survives the start, every file in the cache is the blob its name says, and the
 * next request is served the right bytes (refilled when the kill came before the commit).
 */
describe('SIGKILL during a fill and its commit', () => {
  let seed: SeedInfo;
  let registry: RegistryProcess;
  let front: ForgejoFront;
  let db: TestDatabase;
  let tmp: TempDir;
  let basic: string;
  let layer: SeedLayer;
  const pat = generatePat('sigkill');

  const cacheDir = () => join(tmp.path, 'cache');

  async function start(): Promise<Running> {
    const port = await getFreePort();
    const gw = startBuiltGateway({
      PORT: String(port),
      HOST: '127.0.0.1',
      DATA_DIR: join(tmp.path, 'data'),
      DATABASE_URL: db.url,
      FORGEJO_BASE_URL: front.url,
      FORGEJO_API_TOKEN: pat,
      FORGEJO_API_USERNAME: 'gatehouse',
      OCI_CACHE_DIR: cacheDir(),
      OCI_REGISTRY_SERVICE: `127.0.0.1:${port}`,
      OCI_REGISTRY_REALM: `http://127.0.0.1:${port}/auth/token`,
      UPSTREAM_RETRIES: '0',
      LOG_LEVEL: 'warn',
      ...NO_RATE_LIMITS,
    });
    const url = `http://127.0.0.1:${port}`;
    await gw.waitUntilHealthy(url);
    return { ...gw, url, port };
  }

  async function kill(gw: Running): Promise<void> {
    gw.child.kill('SIGKILL');
    await gw.exited;
  }

  async function bearer(gw: Running): Promise<string> {
    const res = await fetch(
      `${gw.url}/auth/token?service=127.0.0.1:${gw.port}&scope=repository:acme/big:pull`,
      {
        headers: { authorization: basic },
      },
    );
    expect(res.status).toBe(200);
    return `Bearer ${((await res.json()) as { token: string }).token}`;
  }

  /** Every regular file under the cache, with the directory it sits in. */
  async function files(dir: string): Promise<string[]> {
    const out: string[] = [];
    for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
      const p = join(dir, e.name);
      if (e.isDirectory()) out.push(...(await files(p)));
      else out.push(p);
    }
    return out;
  }

  const sha256File = (path: string) =>
    new Promise<string>((resolve, reject) => {
      const h = createHash('sha256');
      createReadStream(path)
        .on('data', (c) => h.update(c))
        .on('end', () => resolve(h.digest('hex')))
        .on('error', reject);
    });

  /** After a start: no temp file left, and each blob file holds exactly the bytes its name says. */
  async function expectCacheSound(): Promise<void> {
    expect(await files(join(cacheDir(), 'tmp'))).toEqual([]);
    for (const f of await files(join(cacheDir(), 'sha256'))) {
      const name = f.split('/').pop()!;
      expect([name, await sha256File(f)]).toEqual([name, name]);
    }
  }

  /** GET the layer; the digest and size of what came, or 'failed' when the stream broke. */
  async function pull(
    gw: Running,
    auth: string,
    onProgress?: (bytes: number) => void | Promise<void>,
  ): Promise<{ digest: string; bytes: number } | 'failed'> {
    try {
      const m = await fetch(`${gw.url}/v2/acme/big/manifests/1.0`, { headers: { authorization: auth } });
      expect(m.status).toBe(200);
      await m.arrayBuffer();
      const res = await request(`${gw.url}/v2/acme/big/blobs/${layer.digest}`, {
        headers: { authorization: auth },
      });
      expect(res.statusCode).toBe(200);
      const h = createHash('sha256');
      let bytes = 0;
      for await (const chunk of res.body) {
        h.update(chunk as Buffer);
        bytes += (chunk as Buffer).length;
        await onProgress?.(bytes);
      }
      return { digest: `sha256:${h.digest('hex')}`, bytes };
    } catch {
      return 'failed';
    }
  }

  /** Restart, check the cache, pull the layer whole and right; then stop and evict it for the next round. */
  async function restartAndVerify(): Promise<void> {
    const gw = await start();
    try {
      await expectCacheSound();
      expect(await pull(gw, await bearer(gw))).toEqual({ digest: layer.digest, bytes: layer.size });
      // The client has its last byte once the fill is verified; the rename follows a moment later.
      const until = Date.now() + 10_000;
      while ((await files(join(cacheDir(), 'tmp'))).length > 0 && Date.now() < until)
        await new Promise((r) => setTimeout(r, 50));
      await expectCacheSound();
      expect(await files(join(cacheDir(), 'sha256'))).toHaveLength(1);
    } finally {
      await kill(gw);
    }
    // The next round starts cold: the file goes, its index row is reconciled away at the next start.
    const hex = layer.digest.slice('sha256:'.length);
    await rm(join(cacheDir(), 'sha256', hex.slice(0, 2), hex), { force: true });
  }

  beforeAll(async () => {
    seed = await prepareSeededStorage();
    registry = await startRegistry({ copyFrom: seed.storageDir });
    front = await startForgejoFront({
      upstreamUrl: registry.url,
      knownOwners: ['acme'],
      tokens: { [pat]: { scopes: ['read:package'] } },
    });
    db = await createTestDatabase();
    tmp = await makeTempDir('sigkill');
    const setup = await createTestGateway({ databaseUrl: db.url, dataDir: join(tmp.path, 'data') });
    await setup.app.get(MemberService).create('sigkill');
    const { key } = await setup.app.get(AccessKeyService).create('sigkill', { name: 't' });
    await setup.app.get(EntitlementService).grant('sigkill', 'acme/big', ['*']);
    await setup.close();
    basic = 'Basic ' + Buffer.from(`sigkill:${key}`).toString('base64');
    layer = seedImage(seed, 'acme/big', '1.0').manifests[0].layers[0];
  });

  afterAll(async () => {
    await front?.stop();
    await registry?.stop();
    await db?.drop();
    await tmp?.cleanup();
  });

  it('before the first byte: the upstream answered headers only', async () => {
    front.setBlobBehaviour(layer.digest, 'hang');
    const gw = await start();
    try {
      front.resetCounts();
      const auth = await bearer(gw);
      const pulling = pull(gw, auth);
      const until = Date.now() + 15_000;
      while (front.countRequests((r) => r.kind === 'blob') === 0 && Date.now() < until)
        await new Promise((r) => setTimeout(r, 20));
      expect(front.countRequests((r) => r.kind === 'blob')).toBeGreaterThan(0);
      await kill(gw);
      expect(await pulling).toBe('failed');
    } finally {
      front.setBlobBehaviour(layer.digest, 'normal');
    }
    await restartAndVerify();
  });

  it('mid-body: 8 MiB of the fill on disk in the temp file', async () => {
    front.setBlobBehaviour(layer.digest, `stall-after:${8 * 1024 * 1024}`);
    const gw = await start();
    try {
      const result = await pull(gw, await bearer(gw), async (bytes) => {
        if (bytes >= 8 * 1024 * 1024) {
          const temp = await files(join(cacheDir(), 'tmp'));
          expect(temp.length).toBeGreaterThan(0);
          expect((await stat(temp[0])).size).toBeGreaterThan(0);
          await kill(gw);
        }
      });
      expect(result).toBe('failed');
    } finally {
      front.setBlobBehaviour(layer.digest, 'normal');
    }
    await restartAndVerify();
  });

  // At the client's last byte the file is whole but not yet renamed or indexed; a few
  // milliseconds later the rename and the index update are under way or done.
  it.each([0, 5, 50])('after the last byte, killed %i ms later', async (delayMs) => {
    const gw = await start();
    const result = await pull(gw, await bearer(gw), async (bytes) => {
      if (bytes === layer.size) {
        if (delayMs) await new Promise((r) => setTimeout(r, delayMs));
        await kill(gw);
      }
    });
    // The client got every byte, and they are right, whatever happened to the gateway after.
    expect(result).toEqual({ digest: layer.digest, bytes: layer.size });
    await restartAndVerify();
  });
});
