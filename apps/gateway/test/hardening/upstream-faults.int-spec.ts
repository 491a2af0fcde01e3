import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { request } from 'undici';
import { BlobFillCoordinator } from '@gatehouse/blob-cache';
import { createTestGateway, TestGateway } from '@gatehouse/testing/gateway';
import { makeTempDir, seedBlobs, seedImage, TempDir } from '@gatehouse/testing/upstream';
import {
  HardeningStack,
  Member,
  NO_RATE_LIMITS,
  snapshotTree,
  socketsTo,
  startHardeningStack,
  waitUntil,
} from './hardening-stack';

const run = promisify(execFile);
const BODY_TIMEOUT_MS = 500;
const MANIFEST_DEADLINE_MS = 3000;

/** Downloads a blob through the gateway; 'failed' when the body did not arrive whole. */
async function download(
  url: string,
  token: string,
  onFirstBytes?: () => void,
): Promise<{ outcome: 'ok' | 'failed'; status: number; digest?: string; ms: number }> {
  const started = Date.now();
  try {
    const res = await request(url, { headers: { authorization: `Bearer ${token}` } });
    if (res.statusCode !== 200) {
      await res.body.dump();
      return { outcome: 'failed', status: res.statusCode, ms: Date.now() - started };
    }
    const hash = createHash('sha256');
    let first = true;
    for await (const chunk of res.body) {
      hash.update(chunk as Buffer);
      if (first) {
        first = false;
        onFirstBytes?.();
      }
    }
    return { outcome: 'ok', status: 200, digest: 'sha256:' + hash.digest('hex'), ms: Date.now() - started };
  } catch {
    return { outcome: 'failed', status: 200, ms: Date.now() - started };
  }
}

async function cacheFiles(cacheDir: string): Promise<string[]> {
  return [...(await snapshotTree(cacheDir)).entries()].filter(([, v]) => v !== 'dir').map(([p]) => p);
}

describe('upstream faults: cuts, trickles, a killed registry', () => {
  let s: HardeningStack;
  let m: Member;
  let token: (repo: string) => Promise<string>;

  beforeAll(async () => {
    s = await startHardeningStack({
      env: {
        UPSTREAM_BODY_TIMEOUT_MS: String(BODY_TIMEOUT_MS),
        UPSTREAM_MANIFEST_DEADLINE_MS: String(MANIFEST_DEADLINE_MS),
      },
    });
    m = await s.member({ 'acme/app': ['*'], 'acme/big': ['*'], 'acme/tool': ['*'] });
    token = (repo) => s.token(m, [`repository:${repo}:pull`]);
    // Resolve the manifests first: the faults below are about blob bodies.
    for (const [repo, tag] of [
      ['acme/app', 'v1.1.0'],
      ['acme/big', '1.0'],
      ['acme/tool', '1.0.0'],
    ]) {
      const res = await fetch(`${s.gw.url}/v2/${repo}/manifests/${tag}`, {
        headers: { authorization: `Bearer ${await token(repo)}` },
      });
      expect(res.status).toBe(200);
      await res.arrayBuffer();
    }
  });

  afterAll(async () => {
    await s?.stop();
  });

  it('ends a download whose upstream trickles 1 byte/s within the body timeout, and frees the upstream socket', async () => {
    const layer = seedImage(s.seed, 'acme/app', 'v1.1.0').manifests[0].layers[0];
    const baseline = await socketsTo(s.front.port);
    s.front.setBlobBehaviour(layer.digest, 'trickle:1');
    try {
      const r = await download(`${s.gw.url}/v2/acme/app/blobs/${layer.digest}`, await token('acme/app'));
      expect(r.outcome).toBe('failed');
      // The body timeout plus scheduling slack; far below the fill timeout (30 min).
      expect(r.ms).toBeLessThan(BODY_TIMEOUT_MS + 4000);
      await s.gw.app.get(BlobFillCoordinator).whenIdle();
      await waitUntil(
        async () => (await socketsTo(s.front.port)) <= baseline,
        5000,
        'upstream sockets to close',
      );
      expect(await readdir(join(s.gw.config.cache.dir, 'tmp'))).toEqual([]);
    } finally {
      s.front.setBlobBehaviour(layer.digest, 'normal');
    }
    const again = await download(`${s.gw.url}/v2/acme/app/blobs/${layer.digest}`, await token('acme/app'));
    expect(again).toMatchObject({ outcome: 'ok', digest: layer.digest });
  });

  it('ends a manifest request whose upstream trickles it, never idle, at the manifest deadline: 503 and an upstream timeout', async () => {
    // 10 bytes/s: a byte every 100 ms never trips the 500 ms idle timeout; only the deadline ends it.
    const image = seedImage(s.seed, 'acme/app', 'v2.0.0-rc.1');
    const timeouts = async () => {
      const text = await (await fetch(`${s.gw.url}/metrics`)).text();
      const line = text
        .split('\n')
        .find((l) => l.startsWith('gatehouse_upstream_failures_total{reason="timeout"}'));
      return line ? Number(line.split(' ').pop()) : 0;
    };
    const before = await timeouts();
    s.front.setBlobBehaviour(image.digest, 'trickle:10');
    const started = Date.now();
    let status: number;
    try {
      const res = await fetch(`${s.gw.url}/v2/acme/app/manifests/v2.0.0-rc.1`, {
        headers: { authorization: `Bearer ${await token('acme/app')}` },
      });
      status = res.status;
      await res.arrayBuffer();
    } finally {
      s.front.setBlobBehaviour(image.digest, 'normal');
    }
    expect(status).toBe(503);
    // The deadline plus scheduling slack, far below the ~${image.size / 10} s the trickle would take.
    expect(Date.now() - started).toBeLessThan(MANIFEST_DEADLINE_MS + 4000);
    expect(await timeouts()).toBe(before + 1);
    const again = await fetch(`${s.gw.url}/v2/acme/app/manifests/v2.0.0-rc.1`, {
      headers: { authorization: `Bearer ${await token('acme/app')}` },
    });
    expect(again.status).toBe(200);
    expect(again.headers.get('docker-content-digest')).toBe(image.digest);
  }, 60_000);

  it('ends a download that stalls after some bytes within the body timeout', async () => {
    const tool = seedImage(s.seed, 'acme/tool', '1.0.0').manifests[0];
    const layer = [...tool.layers].sort((a, b) => b.size - a.size)[0];
    s.front.setBlobBehaviour(layer.digest, `stall-after:${Math.floor(layer.size / 2)}`);
    try {
      const r = await download(`${s.gw.url}/v2/acme/tool/blobs/${layer.digest}`, await token('acme/tool'));
      expect(r.outcome).toBe('failed');
      expect(r.ms).toBeLessThan(BODY_TIMEOUT_MS + 4000);
      await s.gw.app.get(BlobFillCoordinator).whenIdle();
      expect(await readdir(join(s.gw.config.cache.dir, 'tmp'))).toEqual([]);
    } finally {
      s.front.setBlobBehaviour(layer.digest, 'normal');
    }
  });

  it('fails every client of a blob whose registry is killed mid-transfer, keeps no file, and recovers after the restart', async () => {
    const big = seedImage(s.seed, 'acme/big', '1.0').manifests[0].layers[0];
    const t = await token('acme/big');
    // Slow enough that the kill lands mid-body, fast enough to matter little.
    s.front.setBlobBehaviour(big.digest, 'trickle:20000000');
    let killed: Promise<void> | undefined;
    const url = `${s.gw.url}/v2/acme/big/blobs/${big.digest}`;
    const [first, joined] = await Promise.all([
      download(url, t, () => {
        killed ??= s.registry.kill();
      }),
      download(url, t),
    ]);
    await killed;
    expect([first.outcome, joined.outcome]).toEqual(['failed', 'failed']);
    await s.gw.app.get(BlobFillCoordinator).whenIdle();
    const hex = big.digest.slice(7);
    const files = await cacheFiles(s.gw.config.cache.dir);
    expect(files.filter((f) => f.includes(hex) || f.includes(`${join('cache', 'tmp')}/`))).toEqual([]);

    s.front.setBlobBehaviour(big.digest, 'normal');
    await s.registry.restart();
    const ok = await download(url, t);
    expect(ok).toMatchObject({ outcome: 'ok', digest: big.digest });
  });

  it('bounds an upstream that is slow but never idle by the fill timeout', async () => {
    const gw = await createTestGateway({
      env: {
        FORGEJO_BASE_URL: s.front.url,
        FORGEJO_API_TOKEN: s.pat,
        FORGEJO_API_USERNAME: 'gatehouse',
        UPSTREAM_RETRIES: '0',
        OCI_CACHE_FILL_TIMEOUT_SECONDS: '2',
        ...NO_RATE_LIMITS,
      },
    });
    try {
      const { EntitlementService } = await import('@gatehouse/entitlements');
      const { AccessKeyService, MemberService } = await import('@gatehouse/members');
      await gw.app.get(MemberService).create('slowpoke');
      const { key } = await gw.app.get(AccessKeyService).create('slowpoke', { name: 't' });
      await gw.app.get(EntitlementService).grant('slowpoke', 'acme/big', ['*']);
      const res = await fetch(`${gw.url}/auth/token?service=${gw.host}&scope=repository:acme/big:pull`, {
        headers: { authorization: 'Basic ' + Buffer.from(`slowpoke:${key}`).toString('base64') },
      });
      const { token: t } = (await res.json()) as { token: string };
      const layer = seedImage(s.seed, 'acme/big', '1.0').manifests[0].layers[0];
      await fetch(`${gw.url}/v2/acme/big/manifests/1.0`, { headers: { authorization: `Bearer ${t}` } }).then(
        (r) => r.arrayBuffer(),
      );
      // 2 KB/s, a piece every 100 ms: never idle for the body timeout, never done (100 MiB).
      s.front.setBlobBehaviour(layer.digest, 'trickle:2000');
      try {
        const r = await download(`${gw.url}/v2/acme/big/blobs/${layer.digest}`, t);
        expect(r.outcome).toBe('failed');
        expect(r.ms).toBeGreaterThanOrEqual(1500);
        expect(r.ms).toBeLessThan(6000);
        await gw.app.get(BlobFillCoordinator).whenIdle();
        expect(await readdir(join(gw.config.cache.dir, 'tmp'))).toEqual([]);
      } finally {
        s.front.setBlobBehaviour(layer.digest, 'normal');
      }
    } finally {
      await gw.close();
    }
  });
});

describe('cache disk full', () => {
  let s: HardeningStack;
  let mount: TempDir;
  let gw: TestGateway;
  let m: Member;

  beforeAll(async () => {
    s = await startHardeningStack();
    mount = await makeTempDir('tmpfs');
    // A real full disk: a 2 MiB tmpfs (the sandbox runs as root). Without root this throws and
    // the suite fails rather than pretending.
    await run('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', mount.path]);
    gw = await createTestGateway({
      env: {
        FORGEJO_BASE_URL: s.front.url,
        FORGEJO_API_TOKEN: s.pat,
        FORGEJO_API_USERNAME: 'gatehouse',
        UPSTREAM_RETRIES: '0',
        OCI_CACHE_DIR: join(mount.path, 'cache'),
        ...NO_RATE_LIMITS,
      },
    });
    const { EntitlementService } = await import('@gatehouse/entitlements');
    const { AccessKeyService, MemberService } = await import('@gatehouse/members');
    await gw.app.get(MemberService).create('diskfull');
    const { key } = await gw.app.get(AccessKeyService).create('diskfull', { name: 't' });
    await gw.app.get(EntitlementService).grant('diskfull', 'acme/app', ['*']);
    await gw.app.get(EntitlementService).grant('diskfull', 'acme/big', ['*']);
    m = { username: 'diskfull', key, basic: 'Basic ' + Buffer.from(`diskfull:${key}`).toString('base64') };
  });

  afterAll(async () => {
    await gw?.close();
    await run('umount', [mount.path]).catch(() => undefined);
    await mount?.cleanup();
    await s?.stop();
  });

  it('serves manifests and blobs verified from upstream while the cache disk is full, and leaves no partial file', async () => {
    // Fill the file system to the last byte.
    const filler = join(mount.path, 'filler');
    await writeFile(filler, Buffer.alloc(4 * 1024 * 1024)).catch((e: NodeJS.ErrnoException) => {
      expect(e.code).toBe('ENOSPC');
    });
    const qs = new URLSearchParams([
      ['service', gw.host],
      ['scope', 'repository:acme/app:pull'],
      ['scope', 'repository:acme/big:pull'],
    ]);
    const tokenRes = await fetch(`${gw.url}/auth/token?${qs}`, { headers: { authorization: m.basic } });
    const { token: t } = (await tokenRes.json()) as { token: string };
    const image = seedImage(s.seed, 'acme/app', 'v1.0.0');
    const accept = 'application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json';
    const index = await fetch(`${gw.url}/v2/acme/app/manifests/v1.0.0`, {
      headers: { authorization: `Bearer ${t}`, accept },
    });
    expect(index.status).toBe(200);
    expect(index.headers.get('docker-content-digest')).toBe(image.digest);
    await index.arrayBuffer();
    for (const child of image.manifests) {
      const res = await fetch(`${gw.url}/v2/acme/app/manifests/${child.digest}`, {
        headers: { authorization: `Bearer ${t}`, accept },
      });
      expect(res.status).toBe(200);
      await res.arrayBuffer();
    }
    for (const blob of seedBlobs(image)) {
      const r = await download(`${gw.url}/v2/acme/app/blobs/${blob.digest}`, t);
      expect(r).toMatchObject({ outcome: 'ok', digest: blob.digest });
    }
    // 100 MiB through a 2 MiB disk: the fill degrades to pass-through; concurrent clients too.
    const big = seedImage(s.seed, 'acme/big', '1.0').manifests[0].layers[0];
    await fetch(`${gw.url}/v2/acme/big/manifests/1.0`, { headers: { authorization: `Bearer ${t}` } }).then(
      (r) => r.arrayBuffer(),
    );
    const results = await Promise.all(
      [0, 1, 2].map(() => download(`${gw.url}/v2/acme/big/blobs/${big.digest}`, t)),
    );
    for (const r of results) expect(r).toMatchObject({ outcome: 'ok', digest: big.digest });

    await gw.app.get(BlobFillCoordinator).whenIdle();
    const files = (await cacheFiles(join(mount.path, 'cache'))).map((f) => f.slice(mount.path.length));
    // Nothing half-written anywhere: no temp file of the blob cache or the manifest store, and
    // every file that exists is complete (blobs are named by their digest and verified).
    expect(files.filter((f) => /\/tmp\//.test(f))).toEqual([]);
    const logs = gw.rawLogs();
    expect(logs).toMatch(/ENOSPC/);
    // The metric says so too: fills that could not write, their clients served from upstream.
    const metrics = await (await fetch(`${gw.url}/metrics`)).text();
    const failures = /^gatehouse_blob_cache_write_failures_total (\d+)$/m.exec(metrics);
    expect(Number(failures?.[1])).toBeGreaterThanOrEqual(1);
    expect(gw.logs.filter((l) => l.msg === 'unhandled error')).toEqual([]);
  });

  it('caches again once space is back, without a restart', async () => {
    await import('node:fs/promises').then((fs) => fs.rm(join(mount.path, 'filler'), { force: true }));
    const qs = new URLSearchParams([
      ['service', gw.host],
      ['scope', 'repository:acme/app:pull'],
    ]);
    const tokenRes = await fetch(`${gw.url}/auth/token?${qs}`, { headers: { authorization: m.basic } });
    const { token: t } = (await tokenRes.json()) as { token: string };
    const layer = seedImage(s.seed, 'acme/app', 'v1.0.0').manifests[0].layers[0];
    const r = await download(`${gw.url}/v2/acme/app/blobs/${layer.digest}`, t);
    expect(r).toMatchObject({ outcome: 'ok', digest: layer.digest });
    await gw.app.get(BlobFillCoordinator).whenIdle();
    const hex = layer.digest.slice(7);
    const files = await cacheFiles(join(mount.path, 'cache'));
    expect(files).toContain(join(mount.path, 'cache', 'sha256', hex.slice(0, 2), hex));
  });
});

describe('restart with leftover temp files', () => {
  it('empties the blob and manifest temp directories at start', async () => {
    const first = await createTestGateway({ keepDatabase: true });
    const dataDir = first.dataDir;
    const cacheDir = first.config.cache.dir;
    const databaseUrl = first.databaseUrl;
    // Keep the data directory: close() of a gateway given a dataDir leaves it alone.
    const keep = await makeTempDir('restart-data');
    await first.app.close();
    await run('cp', ['-a', `${dataDir}/.`, keep.path]);
    const keptCache = join(keep.path, cacheDir.slice(dataDir.length));
    await mkdir(join(keptCache, 'tmp'), { recursive: true });
    await mkdir(join(keptCache, 'manifests', 'tmp'), { recursive: true });
    await writeFile(join(keptCache, 'tmp', `${'ab'.repeat(8)}-leftover.partial`), Buffer.alloc(1000));
    await writeFile(join(keptCache, 'manifests', 'tmp', 'leftover'), 'half a manifest');
    const second = await createTestGateway({ dataDir: keep.path, databaseUrl });
    try {
      expect(await readdir(join(keptCache, 'tmp'))).toEqual([]);
      expect(await readdir(join(keptCache, 'manifests', 'tmp'))).toEqual([]);
      expect((await fetch(`${second.url}/healthz`)).status).toBe(200);
    } finally {
      await second.close();
      await keep.cleanup();
      await first.close().catch(() => undefined);
    }
  });
});
