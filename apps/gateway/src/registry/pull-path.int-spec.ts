import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AuditQueryService, AuditService } from '@gatehouse/audit';
import { ManualClock } from '@gatehouse/observability';
import { BlobSource } from '@gatehouse/pull-through';
import {
  StackMember,
  startUpstreamGatewayStack,
  TestGateway,
  UpstreamGatewayStack,
} from '@gatehouse/testing/gateway';
import {
  ContainerToolsSandbox,
  createContainerToolsSandbox,
  ForgejoFront,
  SeedInfo,
  seedBlobs,
  seedImage,
  seedLayersOnlyIn,
  seedManifestFor,
} from '@gatehouse/testing/upstream';

const sha256 = (b: Buffer) => 'sha256:' + createHash('sha256').update(b).digest('hex');

/**
 * The pull path end to end: real gateway (Fastify, PostgreSQL, disk cache) in front of the
 * Forgejo front, which serves real content from Debian's registry; real skopeo and podman.
 */
describe('pull path through the gateway', () => {
  let stack: UpstreamGatewayStack;
  let seed: SeedInfo;
  let front: ForgejoFront;
  let gw: TestGateway;
  let pat: string;
  let tools: ContainerToolsSandbox;
  // The whole gateway reads time from this clock: TTLs pass when the test says so.
  const clock = new ManualClock(Date.now());
  const users: Record<string, StackMember> = {};

  async function member(name: string, grants: Record<string, string[]>) {
    users[name] = await stack.member(name, grants);
  }

  const token = (who: string, scopes: string[]) => stack.token(users[who], scopes);

  async function get(
    who: string,
    path: string,
    init: { method?: string; headers?: Record<string, string> } = {},
  ) {
    const repo = /^\/v2\/(.+)\/(manifests|blobs|tags)\//.exec(path)?.[1];
    const scopes = repo
      ? [`repository:${repo}:pull`]
      : path.startsWith('/v2/_catalog')
        ? ['registry:catalog:*']
        : [];
    const t = await token(who, scopes);
    return fetch(`${gw.url}${path}`, {
      method: init.method ?? 'GET',
      headers: {
        authorization: `Bearer ${t}`,
        accept: 'application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json',
        ...init.headers,
      },
    });
  }

  const blobRequests = (digest?: string) =>
    front.countRequests((r) => r.kind === 'blob' && (digest === undefined || r.reference === digest));

  beforeAll(async () => {
    stack = await startUpstreamGatewayStack({
      patLabel: 'pull-path',
      gatewayEnv: {
        OCI_TAG_TTL_SECONDS: '1',
        OCI_TAG_STALE_MAX_SECONDS: '3600',
        UPSTREAM_BODY_TIMEOUT_MS: '5000',
      },
      gateway: { clock },
    });
    ({ seed, front, gw, pat } = stack);
    tools = await createContainerToolsSandbox();
    await member('full', { 'acme/app': ['*'], 'acme/big': ['*'], 'acme/tool': ['1.0.0'] });
    await member('pinned', { 'acme/app': ['v1.0.0'] });
    await member('wild', { 'acme/tool': ['*'] });
  });

  afterAll(async () => {
    await tools?.cleanup();
    await stack?.stop();
  });

  const auditRows = async (filter: { username: string; action: string }) => {
    await gw.app.get(AuditService).flush(10_000);
    return gw.app.get(AuditQueryService).find(filter);
  };

  // First: it needs manifests no other test has fetched yet.
  it('audits a cold manifest GET as a cache miss and a warm one as a hit, by tag and by digest', async () => {
    const image = seedImage(seed, 'acme/app', 'v1.1.0');
    const child = seedManifestFor(image, 'arm64');
    const rows = () => auditRows({ username: users.full.username, action: 'manifest.get' });

    expect((await get('full', '/v2/acme/app/manifests/v1.1.0')).status).toBe(200);
    expect((await rows()).map((r) => [r.reference, r.cache])).toEqual([['v1.1.0', 'miss']]);
    expect((await get('full', '/v2/acme/app/manifests/v1.1.0')).status).toBe(200);
    expect((await rows()).map((r) => r.cache).sort()).toEqual(['hit', 'miss']);

    // The child manifest is fetched while its reachability is proven: still this request's miss.
    expect((await get('full', `/v2/acme/app/manifests/${child.digest}`)).status).toBe(200);
    expect((await get('full', `/v2/acme/app/manifests/${child.digest}`)).status).toBe(200);
    const byDigest = (await rows()).filter((r) => r.reference === child.digest);
    expect(byDigest.map((r) => r.cache).sort()).toEqual(['hit', 'miss']);
  });

  // Before anything else lists acme/tool's tags.
  it('skips and counts an invalid tag in the upstream tag list', async () => {
    front.addListedTag('acme/tool', '-not-a-tag');
    const tool = seedImage(seed, 'acme/tool', '1.0.0').manifests[0];

    // A digest lookup walks the tag list; the invalid tag (tried first) must not make it a 400.
    const config = await get('wild', `/v2/acme/tool/blobs/${tool.config.digest}`);
    expect(config.status).toBe(200);
    expect(sha256(Buffer.from(await config.arrayBuffer()))).toBe(tool.config.digest);
    const unknown = await get('wild', `/v2/acme/tool/blobs/sha256:${'0'.repeat(64)}`);
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as { errors: Array<{ code: string }> }).errors[0].code).toBe(
      'BLOB_UNKNOWN',
    );

    const tags = await get('wild', '/v2/acme/tool/tags/list');
    expect(await tags.json()).toEqual({ name: 'acme/tool', tags: ['1.0.0'] });
    const metrics = await (await fetch(`${gw.url}/metrics`)).text();
    expect(metrics).toMatch(/^gatehouse_upstream_invalid_tags_total [1-9]\d*$/m);
  });

  it('answers a ranged request on a failing fill with an error that has no Content-Range', async () => {
    const image = seedImage(seed, 'acme/app', 'v1.1.0');
    const layer = seedLayersOnlyIn(seed, 'acme/app:v1.1.0', 'acme/app:v1.0.0')[0];
    await get('full', `/v2/acme/app/manifests/${image.digest}`);
    // The fill fails half-way; the one byte asked for is held until verification, so none is sent.
    front.setBlobBehaviour(layer.digest, `cut-after:${Math.floor(layer.size / 2)}`);
    try {
      const res = await get('full', `/v2/acme/app/blobs/${layer.digest}`, {
        headers: { range: 'bytes=0-0' },
      });
      const body = (await res.json()) as { errors: Array<{ code: string }> };
      expect({ status: res.status, contentRange: res.headers.get('content-range') }).toEqual({
        status: 502,
        contentRange: null,
      });
      expect(body.errors).toHaveLength(1);
      await gw.app.get(BlobSource).whenIdle();
    } finally {
      front.setBlobBehaviour(layer.digest, 'normal');
    }
  });

  it('copies the multi-arch image with skopeo copy --all, both architectures, digests preserved', async () => {
    const image = seedImage(seed, 'acme/app', 'v1.0.0');
    const dest = join(tools.dir, 'copy-all');
    const r = await tools.skopeo([
      'copy',
      '--all',
      '--preserve-digests',
      '--src-tls-verify=false',
      '--src-creds',
      `${users.full.username}:${users.full.key}`,
      `docker://${gw.host}/acme/app:v1.0.0`,
      `oci:${dest}:v1.0.0`,
    ]);
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
    const index = JSON.parse(await readFile(join(dest, 'index.json'), 'utf8'));
    expect(index.manifests[0].digest).toBe(image.digest);
    for (const m of image.manifests) {
      expect(sha256(await readFile(join(dest, 'blobs', 'sha256', m.digest.slice(7))))).toBe(m.digest);
    }
    for (const blob of seedBlobs(image)) {
      expect(sha256(await readFile(join(dest, 'blobs', 'sha256', blob.digest.slice(7))))).toBe(blob.digest);
    }
  });

  it.each(['amd64', 'arm64'])('lets podman pull the %s image', async (arch) => {
    const image = seedImage(seed, 'acme/app', 'v1.0.0');
    const m = seedManifestFor(image, arch);
    const pull = await tools.podman([
      'pull',
      '--tls-verify=false',
      '--creds',
      `${users.pinned.username}:${users.pinned.key}`,
      '--arch',
      arch,
      `${gw.host}/acme/app:v1.0.0`,
    ]);
    expect({ code: pull.code, stderr: pull.stderr }).toMatchObject({ code: 0 });
    expect(pull.stdout.trim()).toBe(m.config.digest.slice(7));
  });

  it('serves a second pull with zero upstream blob requests', async () => {
    front.resetCounts();
    const dest = join(tools.dir, 'second');
    const r = await tools.skopeo([
      'copy',
      '--all',
      '--src-tls-verify=false',
      '--src-creds',
      `${users.full.username}:${users.full.key}`,
      `docker://${gw.host}/acme/app:v1.0.0`,
      `oci:${dest}:v1.0.0`,
    ]);
    expect(r.code).toBe(0);
    expect(blobRequests()).toBe(0);
    await gw.app.get(AuditService).flush(10_000);
    const rows = await gw.app
      .get(AuditQueryService)
      .find({ username: users.full.username, action: 'blob.get' });
    expect(rows.some((row) => row.cache === 'hit' && row.outcome === 'allowed')).toBe(true);
  });

  it('enforces the pinned tag: v1.0.0 and its children yes, v1.1.0 and its own layers no, without asking upstream', async () => {
    const v1 = seedImage(seed, 'acme/app', 'v1.0.0');
    const ok = await get('pinned', `/v2/acme/app/manifests/${v1.manifests[0].digest}`);
    expect(ok.status).toBe(200);
    expect(ok.headers.get('docker-content-digest')).toBe(v1.manifests[0].digest);

    const tag = await get('pinned', '/v2/acme/app/manifests/v1.1.0');
    expect(tag.status).toBe(404);
    expect(((await tag.json()) as { errors: Array<{ code: string }> }).errors[0].code).toBe(
      'MANIFEST_UNKNOWN',
    );

    const onlyNew = seedLayersOnlyIn(seed, 'acme/app:v1.1.0', 'acme/app:v1.0.0')[0];
    front.resetCounts();
    const blob = await get('pinned', `/v2/acme/app/blobs/${onlyNew.digest}`);
    expect(blob.status).toBe(404);
    const body = (await blob.json()) as { errors: Array<{ code: string }> };
    expect(body.errors[0].code).toBe('BLOB_UNKNOWN');
    expect(blobRequests(onlyNew.digest)).toBe(0);

    const v11 = seedImage(seed, 'acme/app', 'v1.1.0');
    const byDigest = await get('pinned', `/v2/acme/app/manifests/${v11.digest}`);
    expect(byDigest.status).toBe(404);
    expect(front.countRequests((r) => r.reference === v11.digest)).toBe(0);

    // The same layer is fine for a member whose rules admit v1.1.0.
    const full = await get('full', `/v2/acme/app/blobs/${onlyNew.digest}`);
    expect(full.status).toBe(200);
    expect(sha256(Buffer.from(await full.arrayBuffer()))).toBe(onlyNew.digest);

    await gw.app.get(AuditService).flush(10_000);
    const rows = await gw.app.get(AuditQueryService).find({ username: users.pinned.username });
    const reasons = rows.filter((r) => r.outcome === 'denied').map((r) => r.reason);
    expect(reasons).toEqual(expect.arrayContaining(['tag_not_entitled', 'digest_not_reachable']));
  });

  it('answers an unentitled repository exactly like an unknown one', async () => {
    const other = await get('pinned', '/v2/other/secret/manifests/1.0');
    const unknown = await get('pinned', '/v2/acme/nothing-here/manifests/1.0');
    expect(other.status).toBe(404);
    expect(unknown.status).toBe(404);
    // Each body names its own request id (so support finds the row); nothing else may differ.
    const masked = async (r: Response) => {
      const id = r.headers.get('x-request-id') ?? '';
      expect(id).not.toBe('');
      return (await r.text()).split(id).join('<request id>');
    };
    expect(await masked(other)).toBe(await masked(unknown));
  });

  it('filters tags/list and _catalog to what the member is entitled to', async () => {
    const tags = await get('pinned', '/v2/acme/app/tags/list');
    expect(tags.status).toBe(200);
    expect(await tags.json()).toEqual({ name: 'acme/app', tags: ['v1.0.0'] });

    const all = await get('full', '/v2/acme/app/tags/list');
    expect(((await all.json()) as { tags: string[] }).tags).toEqual([...seed.tags['acme/app']].sort());

    const page = await get('full', '/v2/acme/app/tags/list?n=2');
    const first = (await page.json()) as { tags: string[] };
    expect(first.tags).toHaveLength(2);
    expect(page.headers.get('link')).toBe(`</v2/acme/app/tags/list?n=2&last=${first.tags[1]}>; rel="next"`);

    const catalog = await get('pinned', '/v2/_catalog');
    expect(await catalog.json()).toEqual({ repositories: ['acme/app'] });
    const catalogFull = await get('full', '/v2/_catalog');
    expect(await catalogFull.json()).toEqual({ repositories: ['acme/app', 'acme/big', 'acme/tool'] });
  });

  it('makes exactly one upstream request for 20 concurrent first requests of the large blob', async () => {
    const big = seedImage(seed, 'acme/big', '1.0').manifests[0].layers[0];
    await get('full', '/v2/acme/big/manifests/1.0');
    front.resetCounts();
    const t = await token('full', ['repository:acme/big:pull']);
    const digests = await Promise.all(
      Array.from({ length: 20 }, async () => {
        const res = await fetch(`${gw.url}/v2/acme/big/blobs/${big.digest}`, {
          headers: { authorization: `Bearer ${t}` },
        });
        expect(res.status).toBe(200);
        expect(res.headers.get('content-length')).toBe(String(big.size));
        const hash = createHash('sha256');
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) hash.update(chunk);
        return 'sha256:' + hash.digest('hex');
      }),
    );
    expect(new Set(digests)).toEqual(new Set([big.digest]));
    expect(blobRequests(big.digest)).toBe(1);
  });

  it('serves Range requests on a cached blob', async () => {
    const big = seedImage(seed, 'acme/big', '1.0').manifests[0].layers[0];
    const t = await token('full', ['repository:acme/big:pull']);
    const full = Buffer.from(
      await (
        await fetch(`${gw.url}/v2/acme/big/blobs/${big.digest}`, {
          headers: { authorization: `Bearer ${t}` },
        })
      ).arrayBuffer(),
    );
    front.resetCounts();
    const part = await fetch(`${gw.url}/v2/acme/big/blobs/${big.digest}`, {
      headers: { authorization: `Bearer ${t}`, range: 'bytes=1000-1999' },
    });
    expect(part.status).toBe(206);
    expect(part.headers.get('content-range')).toBe(`bytes 1000-1999/${big.size}`);
    expect(Buffer.from(await part.arrayBuffer())).toEqual(full.subarray(1000, 2000));
    const tail = await fetch(`${gw.url}/v2/acme/big/blobs/${big.digest}`, {
      headers: { authorization: `Bearer ${t}`, range: 'bytes=-10' },
    });
    expect(Buffer.from(await tail.arrayBuffer())).toEqual(full.subarray(full.length - 10));
    const bad = await fetch(`${gw.url}/v2/acme/big/blobs/${big.digest}`, {
      headers: { authorization: `Bearer ${t}`, range: `bytes=${big.size}-` },
    });
    expect(bad.status).toBe(416);
    expect(bad.headers.get('content-range')).toBe(`bytes */${big.size}`);
    expect(blobRequests()).toBe(0);
  });

  it('turns an upstream cut mid-blob into a client error, keeps no cache file, and succeeds next time', async () => {
    const tool = seedImage(seed, 'acme/tool', '1.0.0').manifests[0];
    const layer = [...tool.layers].sort((a, b) => b.size - a.size)[0];
    await get('full', '/v2/acme/tool/manifests/1.0.0');
    front.setBlobBehaviour(layer.digest, `cut-after:${Math.floor(layer.size / 2)}`);
    const t = await token('full', ['repository:acme/tool:pull']);
    const broken = await fetch(`${gw.url}/v2/acme/tool/blobs/${layer.digest}`, {
      headers: { authorization: `Bearer ${t}` },
    })
      .then(
        async (res) => {
          await res.arrayBuffer();
          return 'completed';
        },
        () => 'failed',
      )
      .catch(() => 'failed');
    expect(broken).toBe('failed');
    await gw.app.get(BlobSource).whenIdle();
    const hex = layer.digest.slice(7);
    const cacheDir = gw.config.cache.dir;
    await expect(readFile(join(cacheDir, 'sha256', hex.slice(0, 2), hex))).rejects.toThrow();
    expect(await readdir(join(cacheDir, 'tmp'))).toEqual([]);

    front.setBlobBehaviour(layer.digest, 'normal');
    const ok = await fetch(`${gw.url}/v2/acme/tool/blobs/${layer.digest}`, {
      headers: { authorization: `Bearer ${t}` },
    });
    expect(ok.status).toBe(200);
    expect(sha256(Buffer.from(await ok.arrayBuffer()))).toBe(layer.digest);
  });

  it('refuses write methods with 405 UNSUPPORTED and malformed names with 400', async () => {
    const put = await fetch(`${gw.url}/v2/acme/app/manifests/v9`, { method: 'PUT', body: '{}' });
    expect(put.status).toBe(405);
    expect(((await put.json()) as { errors: Array<{ code: string }> }).errors[0].code).toBe('UNSUPPORTED');
    const bad = await get('full', '/v2/Acme/App/manifests/v1');
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { errors: Array<{ code: string }> }).errors[0].code).toBe('NAME_INVALID');
  });

  it('answers HEAD and If-None-Match for manifests', async () => {
    const image = seedImage(seed, 'acme/app', 'v1.0.0');
    const head = await get('full', '/v2/acme/app/manifests/v1.0.0', { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('docker-content-digest')).toBe(image.digest);
    expect(head.headers.get('content-length')).toBe(String(image.size));
    expect(head.headers.get('content-type')).toBe(image.mediaType);
    const again = await get('full', '/v2/acme/app/manifests/v1.0.0', {
      headers: { 'if-none-match': `"${image.digest}"` },
    });
    expect(again.status).toBe(304);
  });

  it('never writes the service token or a member key into a log line', () => {
    const logs = gw.rawLogs();
    expect(logs.length).toBeGreaterThan(0);
    expect(logs).not.toContain(pat);
    for (const u of Object.values(users)) expect(logs).not.toContain(u.key);
  });

  // Last: it stops the upstream.
  it('keeps serving cached content with upstream down, and a stale tag with a Warning header', async () => {
    const image = seedImage(seed, 'acme/app', 'v1.0.0');
    const layer = seedManifestFor(image, 'amd64').layers[0];
    await get('full', '/v2/acme/app/manifests/v1.0.0');
    await front.stop();
    clock.advance(1100); // past OCI_TAG_TTL_SECONDS=1
    const m = await get('full', '/v2/acme/app/manifests/v1.0.0');
    expect(m.status).toBe(200);
    expect(m.headers.get('docker-content-digest')).toBe(image.digest);
    expect(m.headers.get('warning')).toMatch(/^299 - ".*last known digest.*"$/);
    const b = await get('full', `/v2/acme/app/blobs/${layer.digest}`);
    expect(b.status).toBe(200);
    expect(sha256(Buffer.from(await b.arrayBuffer()))).toBe(layer.digest);
    // A tag never resolved before, with upstream down: 503 UNAVAILABLE, not a guess.
    const never = await get('full', '/v2/acme/app/manifests/v2.0.0-rc.1');
    expect(never.status).toBe(503);
    expect(((await never.json()) as { errors: Array<{ code: string }> }).errors[0].code).toBe('UNAVAILABLE');
  });
});
