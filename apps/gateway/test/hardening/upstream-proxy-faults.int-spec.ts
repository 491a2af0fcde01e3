import { createHash } from 'node:crypto';
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { request } from 'undici';
import { BlobCacheService, BlobFillCoordinator } from '@gatehouse/blob-cache';
import { EntitlementService } from '@gatehouse/entitlements';
import { AccessKeyService, MemberService } from '@gatehouse/members';
import { createTestGateway, TestGateway } from '@gatehouse/testing/gateway';
import { FaultProxy, seedImage, SeedLayer, startFaultProxy } from '@gatehouse/testing/upstream';
import { HardeningStack, NO_RATE_LIMITS, startHardeningStack } from './hardening-stack';

const BODY_TIMEOUT_MS = 2000;
const RETRIES = 2;
/** What bounds an upstream that is slow but never idle for the body timeout (default 30 min). */
const FILL_TIMEOUT_S = 8;

type Outcome =
  { outcome: 'ok'; digest: string; bytes: number; ms: number } | { outcome: 'failed'; ms: number };

/**
 * Upstream faults injected on the wire by a TCP proxy between the gateway and the Forgejo front:
 * resets and stalls mid-body under single-flight, a wrong Content-Length either way, and a burst
 * of 5xx. Whatever the fault: every client either gets the right bytes or an error, promptly;
 * the cache never keeps a wrong or partial file; upstream attempts are bounded by
 * UPSTREAM_RETRIES; the client's own retry succeeds once the fault is gone.
 */
describe('upstream faults through a fault-injecting proxy', () => {
  let s: HardeningStack;
  let proxy: FaultProxy;
  let gw: TestGateway;
  let token: string;
  let big: SeedLayer;

  beforeAll(async () => {
    s = await startHardeningStack();
    proxy = await startFaultProxy({ host: '127.0.0.1', port: s.front.port });
    gw = await createTestGateway({
      env: {
        FORGEJO_BASE_URL: proxy.url,
        FORGEJO_API_TOKEN: s.pat,
        FORGEJO_API_USERNAME: 'gatehouse',
        UPSTREAM_RETRIES: String(RETRIES),
        UPSTREAM_BODY_TIMEOUT_MS: String(BODY_TIMEOUT_MS),
        OCI_CACHE_FILL_TIMEOUT_SECONDS: String(FILL_TIMEOUT_S),
        ...NO_RATE_LIMITS,
      },
    });
    await gw.app.get(MemberService).create('faulty');
    const { key } = await gw.app.get(AccessKeyService).create('faulty', { name: 't' });
    await gw.app.get(EntitlementService).grant('faulty', 'acme/big', ['*']);
    await gw.app.get(EntitlementService).grant('faulty', 'acme/app', ['*']);
    const basic = 'Basic ' + Buffer.from(`faulty:${key}`).toString('base64');
    const res = await fetch(
      `${gw.url}/auth/token?service=${gw.host}&scope=repository:acme/big:pull&scope=repository:acme/app:pull`,
      { headers: { authorization: basic } },
    );
    token = ((await res.json()) as { token: string }).token;
    big = seedImage(s.seed, 'acme/big', '1.0').manifests[0].layers[0];
    for (const path of ['/v2/acme/big/manifests/1.0', '/v2/acme/app/manifests/v1.0.0']) {
      const m = await fetch(`${gw.url}${path}`, { headers: { authorization: `Bearer ${token}` } });
      expect(m.status).toBe(200);
      await m.arrayBuffer();
    }
  });

  afterAll(async () => {
    await gw?.close();
    await proxy?.stop();
    await s?.stop();
  });

  async function pull(repo: string, digest: string): Promise<Outcome> {
    const started = Date.now();
    try {
      const res = await request(`${gw.url}/v2/${repo}/blobs/${digest}`, {
        headers: { authorization: `Bearer ${token}` },
      });
      if (res.statusCode !== 200) {
        await res.body.dump();
        return { outcome: 'failed', ms: Date.now() - started };
      }
      const h = createHash('sha256');
      let bytes = 0;
      for await (const c of res.body) {
        h.update(c as Buffer);
        bytes += (c as Buffer).length;
      }
      return { outcome: 'ok', digest: `sha256:${h.digest('hex')}`, bytes, ms: Date.now() - started };
    } catch {
      return { outcome: 'failed', ms: Date.now() - started };
    }
  }

  /** Right bytes or an error: never a "success" with other bytes. */
  const sound = (o: Outcome, layer: SeedLayer) =>
    o.outcome === 'failed' || (o.digest === layer.digest && o.bytes === layer.size);

  async function expectNoFileOf(layer: SeedLayer): Promise<void> {
    const hex = layer.digest.slice('sha256:'.length);
    const shard = await readdir(join(gw.config.cache.dir, 'sha256', hex.slice(0, 2))).catch(() => []);
    expect(shard).not.toContain(hex);
    const until = Date.now() + 5_000;
    while ((await readdir(join(gw.config.cache.dir, 'tmp'))).length > 0 && Date.now() < until)
      await new Promise((r) => setTimeout(r, 50));
    expect(await readdir(join(gw.config.cache.dir, 'tmp'))).toEqual([]);
  }

  /** Makes the next pull of `layer` cold: the file goes, and the index forgets it (verify finds it missing). */
  async function evict(layer: SeedLayer): Promise<void> {
    // A reader gets its last byte once the hash matches; the commit follows the last disk write.
    await gw.app.get(BlobFillCoordinator).whenIdle();
    const hex = layer.digest.slice('sha256:'.length);
    await rm(join(gw.config.cache.dir, 'sha256', hex.slice(0, 2), hex), { force: true });
    await gw.app.get(BlobCacheService).verify(layer.digest);
  }

  const attempts = (layer: SeedLayer) => proxy.requests.filter((p) => p.includes(layer.digest)).length;

  it.each([
    ['a reset 1 MiB into the body', `reset-after:${1024 * 1024}`, 'error'],
    ['a stall 1 MiB into the body', `stall-after:${1024 * 1024}`, 'error'],
    // 20 KB/s, a piece every 100 ms: never idle for the body timeout, so the fill timeout ends it.
    ['a slow trickle of the whole response', 'trickle:20000', 'error'],
    // Refused before a byte when the fill knows the size from the manifest, else read to the digest's
    // size and verified: right bytes or an error either way, never a partial file.
    ['a Content-Length 1000 bytes too long', 'content-length:1000', 'either'],
    ['a Content-Length 1000 bytes too short', 'content-length:-1000', 'error'],
  ] as const)(
    '%s: five single-flight clients get the right bytes or an error, promptly (%s)',
    async (_, fault, expected) => {
      proxy.requests.length = 0;
      await evict(big);
      proxy.setRules([{ path: /\/blobs\//, fault }]);
      const outcomes = await Promise.all(Array.from({ length: 5 }, () => pull('acme/big', big.digest)));
      proxy.setRules([]);
      expect(outcomes.every((o) => sound(o, big))).toBe(true);
      if (expected !== 'either')
        expect(outcomes.filter((o) => o.outcome === (expected === 'error' ? 'failed' : 'ok'))).toHaveLength(
          5,
        );
      // Promptly: each attempt ends at the fault or at the body timeout, retries bounded; a trickle
      // ends at the fill timeout.
      const bound = Math.max((RETRIES + 1) * (BODY_TIMEOUT_MS + 3_000), FILL_TIMEOUT_S * 1000 + 5_000);
      expect(Math.max(...outcomes.map((o) => o.ms))).toBeLessThan(bound);
      // Single flight: five clients share each upstream attempt, and there are at most 1 + retries per client.
      expect(attempts(big)).toBeLessThanOrEqual(5 * (RETRIES + 1));
      if (outcomes.every((o) => o.outcome === 'failed')) await expectNoFileOf(big);
      else expect(await gw.app.get(BlobCacheService).verify(big.digest)).toMatchObject({ status: 'ok' });
      // The fault is gone: the client's own retry gets the right bytes.
      const again = await pull('acme/big', big.digest);
      expect(again).toMatchObject({ outcome: 'ok', digest: big.digest, bytes: big.size });
    },
  );

  it('rides out a burst of two 503s within UPSTREAM_RETRIES, with exactly three upstream attempts', async () => {
    const layer = seedImage(s.seed, 'acme/app', 'v1.0.0').manifests[0].layers[0];
    proxy.requests.length = 0;
    proxy.setRules([{ path: new RegExp(`/blobs/${layer.digest}`), fault: 'status:503', times: 2 }]);
    const first = await pull('acme/app', layer.digest);
    proxy.setRules([]);
    expect(first).toMatchObject({ outcome: 'ok', digest: layer.digest, bytes: layer.size });
    expect(attempts(layer)).toBe(3);
  });

  it('gives up after UPSTREAM_RETRIES on a longer burst, and the client retry then succeeds', async () => {
    const layer = seedImage(s.seed, 'acme/app', 'v1.0.0').manifests[0].layers[1];
    proxy.requests.length = 0;
    proxy.setRules([{ path: new RegExp(`/blobs/${layer.digest}`), fault: 'status:503', times: 10 }]);
    const first = await pull('acme/app', layer.digest);
    expect(first.outcome).toBe('failed');
    expect(attempts(layer)).toBe(RETRIES + 1);
    proxy.setRules([]);
    expect(await pull('acme/app', layer.digest)).toMatchObject({ outcome: 'ok', digest: layer.digest });
  });
});
