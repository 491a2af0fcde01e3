import { Writable } from 'node:stream';
import { createHash } from 'node:crypto';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { UpstreamConfig } from '@gatehouse/config';
import { createCapturingLogger, MetricsService } from '@gatehouse/observability';
import {
  ForgejoFront,
  FrontRequestRecord,
  generatePat,
  prepareSeededStorage,
  RegistryProcess,
  SeedInfo,
  seedImage,
  seedManifestFor,
  startForgejoFront,
  startRegistry,
} from '@gatehouse/testing/upstream';
import { Clock } from '@gatehouse/observability';
import { parseDigest } from '@gatehouse/oci';
import { UpstreamError } from './upstream.error';
import { UpstreamHealth } from './upstream-health.service';
import { UpstreamRegistryClient } from './upstream-registry.client';
import { config as fakeConfig } from './testing/upstream-fakes';
import { UpstreamBlob, UpstreamManifest } from './upstream.types';

// The client against the real test upstream: a CNCF distribution registry (Basic, htpasswd)
// and the Forgejo front in front of it (Bearer challenge, {"token"} answers, Forgejo's text
// errors, serve-direct 307s to a storage origin that refuses Authorization).

class FakeClock extends Clock {
  offset = 0;
  override now(): number {
    return Date.now() + this.offset;
  }
}

interface Harness {
  client: UpstreamRegistryClient;
  clock: FakeClock;
  health: UpstreamHealth;
  errorLines(): Array<Record<string, unknown>>;
  raw(): string;
  failures(reason: string): Promise<number>;
}

const clients: UpstreamRegistryClient[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
});

function harness(baseUrl: string, token: string, over: Partial<UpstreamConfig> = {}): Harness {
  const { logger, lines, raw } = createCapturingLogger('debug');
  const metrics = new MetricsService();
  const clock = new FakeClock();
  // The unit fakes' settings, with this suite's timeouts, pool and retries.
  const config: UpstreamConfig = {
    ...fakeConfig(baseUrl),
    token,
    headersTimeoutMs: 5000,
    bodyTimeoutMs: 5000,
    maxConnections: 8,
    retries: 1,
    ...over,
  };
  const client = new UpstreamRegistryClient(config, logger, metrics, clock, { retryBaseDelayMs: 5 });
  clients.push(client);
  return {
    client,
    clock,
    health: new UpstreamHealth(client, logger, clock, { ttlMs: 30_000 }),
    errorLines: () => lines().filter((l) => l.level === 'error'),
    raw,
    failures: async (reason) => {
      const m = await metrics.registry.getSingleMetric('gatehouse_upstream_failures_total')!.get();
      return m.values.find((v) => v.labels.reason === reason)?.value ?? 0;
    },
  };
}

async function drain(blob: UpstreamBlob, onFirstChunk?: () => Promise<void> | void): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let first = true;
  await pipeline(
    blob.body,
    new Writable({
      write(c, _e, cb) {
        chunks.push(c as Buffer);
        if (first && onFirstChunk) {
          first = false;
          Promise.resolve(onFirstChunk()).then(() => cb(), cb);
          return;
        }
        cb();
      },
    }),
  );
  return Buffer.concat(chunks);
}

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

const GENERIC_502 = {
  errors: [{ code: 'UPSTREAM_ERROR', message: 'the upstream registry could not serve this request' }],
};

const LINES = {
  tokenInvalid:
    'Forgejo rejected the service token (401 authGroup.Verify): FORGEJO_API_TOKEN is invalid, expired or revoked. Fix: create a new token with scope read:package for the user that can read the owner and set FORGEJO_API_TOKEN.',
  missingScope: (owner: string) =>
    `Forgejo refused the service token for owner "${owner}" (401 reqPackageAccess): FORGEJO_API_TOKEN lacks the read:package scope, or its user cannot read the owner "${owner}". Fix: create a token with scope read:package for a user that can read "${owner}" (the owner itself, a member of the organisation, or a site admin) and set FORGEJO_API_TOKEN.`,
  publicOnly: (owner: string) =>
    `Forgejo refused the service token for owner "${owner}" (403 reqToken): FORGEJO_API_TOKEN is a public-only token and "${owner}" is private. Fix: create a token without the public-only restriction, with scope read:package, and set FORGEJO_API_TOKEN.`,
  ownerUnknown: (owner: string, repo: string) =>
    `Forgejo does not know the owner "${owner}" (404 Not found.): it does not exist, was renamed, or is not visible to the user of FORGEJO_API_TOKEN. Fix: correct the owner of "${repo}" in the entitlement, or give the user of FORGEJO_API_TOKEN access to "${owner}".`,
  basicRefused:
    'The upstream registry at FORGEJO_BASE_URL rejected the service credentials (401 Basic realm="gatehouse-test"): FORGEJO_API_USERNAME / FORGEJO_API_TOKEN are wrong or revoked. Fix: set FORGEJO_API_USERNAME and FORGEJO_API_TOKEN to a user and password (or token) that the registry accepts.',
};

describe('UpstreamRegistryClient against the Forgejo front (Bearer)', () => {
  let seed: SeedInfo;
  let registry: RegistryProcess;
  let front: ForgejoFront;
  const storageCreds = { username: 'forgejo', password: 'storage-pw' };
  const readPat = generatePat('upstream-read');
  const noScopePat = generatePat('upstream-no-scope');
  const publicOnlyPat = generatePat('upstream-public-only');
  const outsiderPat = generatePat('upstream-outsider');
  const unknownPat = generatePat('upstream-never-issued');

  beforeAll(async () => {
    seed = await prepareSeededStorage();
    registry = await startRegistry({ copyFrom: seed.storageDir, htpasswd: storageCreds });
    front = await startForgejoFront({
      upstreamUrl: registry.url,
      upstreamCreds: storageCreds,
      knownOwners: ['acme', 'other'],
      privateOwners: ['other'],
      userOwners: { outsider: ['acme'] },
      tokens: {
        [readPat]: { scopes: ['read:package'] },
        [noScopePat]: { scopes: ['read:repository'] },
        [publicOnlyPat]: { scopes: ['public-only', 'read:package'] },
        [outsiderPat]: { scopes: ['read:package'], user: 'outsider' },
      },
    });
  });

  afterAll(async () => {
    await front?.stop();
    await registry?.stop();
  });

  beforeEach(() => {
    front.setServeDirect(false);
    front.resetCounts();
  });

  const tokenRequests = () => front.countRequests((r: FrontRequestRecord) => r.kind === 'token');

  it('fetches a token with an empty username, reuses it, and serves verified manifests', async () => {
    const h = harness(front.url, readPat);
    const image = seedImage(seed, 'acme/app', 'v1.0.0');
    for (let i = 0; i < 3; i++) {
      const m = (await h.client.getManifest('acme/app', 'v1.0.0')) as UpstreamManifest;
      expect(m).toMatchObject({
        found: true,
        digest: image.digest,
        mediaType: image.mediaType,
        size: image.size,
      });
      expect(sha256(m.body!)).toBe(image.digest);
    }
    const head = await h.client.getManifest('acme/app', image.digest, { method: 'HEAD' });
    expect(head).toEqual({ found: true, digest: image.digest, mediaType: image.mediaType, size: image.size });
    expect(tokenRequests()).toBe(1);
    expect(front.requests.find((r: FrontRequestRecord) => r.kind === 'token')).toMatchObject({
      auth: 'basic',
      status: 200,
    });
    expect(
      front.requests
        .filter((r: FrontRequestRecord) => r.kind === 'manifest')
        .every((r: FrontRequestRecord) => r.auth === 'bearer'),
    ).toBe(true);
    expect(h.errorLines()).toEqual([]);
  });

  it('fetches a new token when the cached one nears expiry', async () => {
    const h = harness(front.url, readPat);
    await h.client.getManifest('acme/app', 'v1.0.0');
    await h.client.getManifest('acme/app', 'v1.1.0');
    expect(tokenRequests()).toBe(1);
    // The front's JWTs live 24 h; 30 s before exp the cached one is retired.
    h.clock.offset = 24 * 3600_000 - 20_000;
    await h.client.getManifest('acme/app', 'v1.0.0');
    expect(tokenRequests()).toBe(2);
  });

  it('refreshes once when the cached token is refused (secret rotated), then succeeds', async () => {
    const h = harness(front.url, readPat);
    await h.client.getManifest('acme/app', 'v1.0.0');
    front.invalidateJwts();
    await expect(h.client.getManifest('acme/app', 'v1.0.0')).resolves.toMatchObject({ found: true });
    expect(tokenRequests()).toBe(2);
    expect(h.errorLines()).toEqual([]);
  });

  it('revoked token: refresh once, then token_invalid with the operator line; the member gets the generic 502', async () => {
    const pat = generatePat('upstream-revoked-later');
    front.addToken(pat, { scopes: ['read:package'] });
    const h = harness(front.url, pat);
    await h.client.getManifest('acme/app', 'v1.0.0');
    front.revokeToken(pat);
    front.invalidateJwts();
    const err = (await h.client.getManifest('acme/app', 'v1.0.0').catch((e: unknown) => e)) as UpstreamError;
    expect(err).toBeInstanceOf(UpstreamError);
    expect(err.reason).toBe('token_invalid');
    expect(tokenRequests()).toBe(2);
    expect(h.errorLines().map((l) => l.msg)).toEqual([LINES.tokenInvalid]);
    expect(await h.failures('token_invalid')).toBe(1);
    expect(err.toOciError().status).toBe(502);
    expect(err.toOciError().toEnvelope()).toEqual(GENERIC_502);
    expect(h.raw()).not.toContain(pat);
  });

  it.each<[string, () => string, string, string, string, (h: Harness) => string]>([
    ['an unknown token', () => unknownPat, 'acme/app', 'v1.0.0', 'token_invalid', () => LINES.tokenInvalid],
    [
      'a token without read:package',
      () => noScopePat,
      'acme/app',
      'v1.0.0',
      'token_missing_scope',
      () => LINES.missingScope('acme'),
    ],
    [
      'a token whose user cannot read the owner',
      () => outsiderPat,
      'other/secret',
      '1.0',
      'token_missing_scope',
      () => LINES.missingScope('other'),
    ],
    [
      'a public-only token on a private owner',
      () => publicOnlyPat,
      'other/secret',
      '1.0',
      'token_public_only',
      () => LINES.publicOnly('other'),
    ],
    [
      'an unknown owner',
      () => readPat,
      'nobody/app',
      'v1',
      'owner_unknown',
      () => LINES.ownerUnknown('nobody', 'nobody/app'),
    ],
  ])('%s: exact log line, metric label, generic envelope', async (_label, pat, repo, ref, reason, line) => {
    const h = harness(front.url, pat());
    const err = (await h.client.getManifest(repo, ref).catch((e: unknown) => e)) as UpstreamError;
    expect(err).toBeInstanceOf(UpstreamError);
    expect(err.reason).toBe(reason);
    const lines = h.errorLines();
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 'error', reason, msg: line(h) });
    expect(await h.failures(reason)).toBe(1);
    expect(err.toOciError().toEnvelope()).toEqual(GENERIC_502);
    expect(h.raw()).not.toContain(pat());
  });

  describe('referrers', () => {
    it("takes Forgejo's empty 404 as no referrers API, and returns the index once the front has one", async () => {
      const h = harness(front.url, readPat);
      const subject = parseDigest(seedImage(seed, 'acme/app', 'v1.0.0').digest);
      await expect(h.client.listReferrers('acme/app', subject)).resolves.toBeNull();
      expect(front.requests.filter((r) => r.kind === 'referrers')).toMatchObject([
        { repository: 'acme/app', reference: subject, auth: 'bearer', status: 404 },
      ]);
      const descriptor = {
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        digest: subject,
        size: 1,
      };
      front.setReferrersApi(true);
      try {
        front.addReferrer('acme/app', subject, descriptor);
        const index = await h.client.listReferrers('acme/app', subject);
        expect((JSON.parse(index!.toString()) as { manifests: unknown[] }).manifests).toEqual([descriptor]);
      } finally {
        front.setReferrersApi(false);
      }
      expect(h.errorLines()).toEqual([]);
    });

    it('fails a refused token exactly as a manifest request does', async () => {
      const subject = parseDigest(seedImage(seed, 'other/secret', '1.0').digest);
      for (const [pat, reason, line] of [
        [noScopePat, 'token_missing_scope', LINES.missingScope('acme')],
        [publicOnlyPat, 'token_public_only', LINES.publicOnly('other')],
      ] as const) {
        const h = harness(front.url, pat);
        const repo = reason === 'token_public_only' ? 'other/secret' : 'acme/app';
        const err = (await h.client.listReferrers(repo, subject).catch((e: unknown) => e)) as UpstreamError;
        expect([err instanceof UpstreamError, err.reason]).toEqual([true, reason]);
        expect(h.errorLines().map((l) => l.msg)).toEqual([line]);
      }
    });
  });

  it('returns a typed not-found for an unknown tag or blob under a known owner', async () => {
    const h = harness(front.url, readPat);
    await expect(h.client.getManifest('acme/app', 'v9.9.9')).resolves.toEqual({
      found: false,
      code: 'MANIFEST_UNKNOWN',
    });
    await expect(h.client.getBlob('acme/app', parseDigest(`sha256:${'0'.repeat(64)}`))).resolves.toEqual({
      found: false,
      code: 'BLOB_UNKNOWN',
    });
    expect(h.errorLines()).toEqual([]);
  });

  it('follows the serve-direct 307 to storage without Authorization, for blobs, ranges and manifests', async () => {
    const h = harness(front.url, readPat);
    const manifest = seedManifestFor(seedImage(seed, 'acme/app', 'v1.0.0'), 'amd64');
    const layer = manifest.layers[0];

    const direct = (await h.client.getBlob('acme/app', parseDigest(layer.digest))) as UpstreamBlob;
    const bytes = await drain(direct);
    expect(sha256(bytes)).toBe(layer.digest);

    front.setServeDirect(true);
    const viaStorage = (await h.client.getBlob('acme/app', parseDigest(layer.digest), {
      expectedSize: layer.size,
    })) as UpstreamBlob;
    expect(viaStorage).toMatchObject({ found: true, status: 200, size: layer.size });
    expect((await drain(viaStorage)).equals(bytes)).toBe(true);

    const part = (await h.client.getBlob('acme/app', parseDigest(layer.digest), {
      range: 'bytes=10-109',
    })) as UpstreamBlob;
    expect(part).toMatchObject({ status: 206, size: 100, contentRange: `bytes 10-109/${layer.size}` });
    expect((await drain(part)).equals(bytes.subarray(10, 110))).toBe(true);

    const m = (await h.client.getManifest('acme/app', manifest.digest)) as UpstreamManifest;
    expect(sha256(m.body!)).toBe(manifest.digest);

    const storage = front.requests.filter((r: FrontRequestRecord) => r.server === 'storage');
    expect(storage.length).toBe(3);
    expect(
      storage.every((r: FrontRequestRecord) => r.auth === 'none' && r.status >= 200 && r.status < 300),
    ).toBe(true);
    expect(
      front.requests
        .filter((r: FrontRequestRecord) => r.server === 'front' && r.kind === 'blob')
        .every((r: FrontRequestRecord) => r.auth === 'bearer'),
    ).toBe(true);
    expect(h.raw()).not.toContain('X-Amz-Signature');
  });

  it('passes Range through to Forgejo when it streams itself', async () => {
    const h = harness(front.url, readPat);
    const layer = seedManifestFor(seedImage(seed, 'acme/app', 'v1.0.0'), 'amd64').layers[0];
    const part = (await h.client.getBlob('acme/app', parseDigest(layer.digest), {
      range: 'bytes=0-9',
    })) as UpstreamBlob;
    expect(part).toMatchObject({ status: 206, size: 10, contentRange: `bytes 0-9/${layer.size}` });
    expect((await drain(part)).length).toBe(10);
  });

  it('surfaces a blob body cut by the upstream as a truncated error, never a short success', async () => {
    const h = harness(front.url, readPat);
    const layer = seedManifestFor(seedImage(seed, 'acme/app', 'v1.1.0'), 'amd64').layers[0];
    front.setBlobBehaviour(layer.digest, 'cut-after:100');
    try {
      const blob = (await h.client.getBlob('acme/app', parseDigest(layer.digest))) as UpstreamBlob;
      const err = (await drain(blob).catch((e: unknown) => e)) as UpstreamError;
      expect(err).toBeInstanceOf(UpstreamError);
      expect(err.reason).toBe('truncated');
      expect(await h.failures('truncated')).toBe(1);
      expect(String(h.errorLines()[0].msg)).toContain(
        `acme/app blob ${layer.digest} ended after 100 of ${layer.size} bytes`,
      );
    } finally {
      front.setBlobBehaviour(layer.digest, 'normal');
    }
  });

  it('fails a stalled blob with the idle body timeout', async () => {
    const h = harness(front.url, readPat, { bodyTimeoutMs: 500 });
    const layer = seedManifestFor(seedImage(seed, 'acme/app', 'v1.1.0'), 'arm64').layers[0];
    front.setBlobBehaviour(layer.digest, 'stall-after:100');
    try {
      const blob = (await h.client.getBlob('acme/app', parseDigest(layer.digest))) as UpstreamBlob;
      await expect(drain(blob)).rejects.toMatchObject({ reason: 'timeout' });
      expect(String(h.errorLines()[0].msg)).toContain('raise UPSTREAM_BODY_TIMEOUT_MS');
    } finally {
      front.setBlobBehaviour(layer.digest, 'normal');
    }
  });

  it('ends a manifest the upstream trickles at 1 byte/s at the overall deadline, as an upstream timeout', async () => {
    // The idle body timeout never fires (a byte comes every second): only the deadline ends it.
    const h = harness(front.url, readPat, { bodyTimeoutMs: 5_000, manifestDeadlineMs: 1_500 });
    const manifest = (await h.client.getManifest('acme/app', 'v1.0.0')) as UpstreamManifest;
    front.setBlobBehaviour(manifest.digest, 'trickle:1');
    const started = Date.now();
    try {
      await expect(h.client.getManifest('acme/app', 'v1.0.0')).rejects.toMatchObject({ reason: 'timeout' });
      await expect(h.client.getManifest('acme/app', manifest.digest)).rejects.toMatchObject({
        reason: 'timeout',
      });
    } finally {
      front.setBlobBehaviour(manifest.digest, 'normal');
    }
    // Each gave up near its deadline, not after the ~${manifest.size} s the trickle would take.
    expect(Date.now() - started).toBeLessThan(manifest.size * 1_000);
    expect(await h.failures('timeout')).toBe(2);
    const lines = h.errorLines().map((l) => String(l.msg));
    expect(lines).toHaveLength(2);
    expect(lines[0]).toContain('within 1500 ms');
    expect(lines[0]).toContain('raise UPSTREAM_MANIFEST_DEADLINE_MS');
    // The upstream is fine again once it stops trickling.
    await expect(h.client.getManifest('acme/app', 'v1.0.0')).resolves.toMatchObject({ found: true });
  }, 30_000);

  it("lists every tag, following Forgejo's Link to the extra empty page", async () => {
    const h = harness(front.url, readPat);
    expect(await h.client.listAllTags('acme/app', { pageSize: 2 })).toEqual({
      found: true,
      name: 'acme/app',
      tags: seed.tags['acme/app'],
    });
    expect(front.countRequests((r: FrontRequestRecord) => r.kind === 'tags')).toBe(3);
    expect(await h.client.listTags('acme/app', { n: 1, last: 'latest' })).toEqual({
      found: true,
      name: 'acme/app',
      tags: ['v1.0.0'],
      next: { last: 'v1.0.0', n: 1 },
    });
    await expect(h.client.listAllTags('acme/nothing')).resolves.toEqual({
      found: false,
      code: 'NAME_UNKNOWN',
    });
  });

  describe('readiness', () => {
    it('turns false with the diagnostic when the token is revoked at the front, after the cache expires', async () => {
      const pat = generatePat('upstream-readiness');
      front.addToken(pat, { scopes: ['read:package'] });
      const h = harness(front.url, pat);
      expect(await h.health.check()).toMatchObject({ ok: true });
      const checksBefore = tokenRequests();
      front.revokeToken(pat);
      // Cached for ~30 s: probes do not reach the upstream.
      expect(await h.health.check()).toMatchObject({ ok: true });
      expect(tokenRequests()).toBe(checksBefore);
      h.clock.offset = 31_000;
      const status = await h.health.check();
      expect(status).toMatchObject({ ok: false, reason: 'token_invalid', message: LINES.tokenInvalid });
      expect(h.errorLines().map((l) => l.msg)).toEqual([LINES.tokenInvalid]);
    });

    it('detects a token without read:package by probing a repository from the catalog', async () => {
      const h = harness(front.url, noScopePat);
      const status = await h.health.selfCheck();
      expect(status).toMatchObject({
        ok: false,
        reason: 'token_missing_scope',
        message: LINES.missingScope('acme'),
      });
      expect(h.errorLines()).toHaveLength(1);
    });

    it('reports ok with the probed repository for a good token', async () => {
      const h = harness(front.url, readPat);
      const status = await h.health.selfCheck();
      expect(status.ok).toBe(true);
      expect(status.message).toMatch(/bearer auth, read acme\//);
    });

    it('reports unreachable with FORGEJO_BASE_URL in the diagnostic', async () => {
      const dead = await startRegistry({});
      const url = dead.url;
      await dead.stop();
      const h = harness(url, readPat, { retries: 0 });
      const status = await h.health.check();
      expect(status).toMatchObject({ ok: false, reason: 'unreachable' });
      expect(status.message).toContain(`FORGEJO_BASE_URL=${url}`);
    });
  });
});

describe('UpstreamRegistryClient against the distribution registry (Basic)', () => {
  let seed: SeedInfo;
  let registry: RegistryProcess;
  const creds = { username: 'gatehouse', password: 'registry-password-1' };

  beforeAll(async () => {
    seed = await prepareSeededStorage();
    registry = await startRegistry({ copyFrom: seed.storageDir, htpasswd: creds });
  });

  afterAll(async () => {
    await registry?.stop();
  });

  it('pulls manifests, blobs with Range and tags with Basic credentials', async () => {
    const h = harness(registry.url, creds.password, { username: creds.username });
    const image = seedImage(seed, 'acme/app', 'v1.1.0');
    const m = (await h.client.getManifest('acme/app', 'v1.1.0')) as UpstreamManifest;
    expect(m).toMatchObject({ found: true, digest: image.digest, mediaType: image.mediaType });
    const config = seedManifestFor(image, 'amd64').config;
    const blob = (await h.client.getBlob('acme/app', parseDigest(config.digest), {
      expectedSize: config.size,
    })) as UpstreamBlob;
    const bytes = await drain(blob);
    expect(sha256(bytes)).toBe(config.digest);
    const part = (await h.client.getBlob('acme/app', parseDigest(config.digest), {
      range: 'bytes=1-4',
    })) as UpstreamBlob;
    expect(part.status).toBe(206);
    expect((await drain(part)).equals(bytes.subarray(1, 5))).toBe(true);
    expect(await h.client.listAllTags('acme/app', { pageSize: 3 })).toMatchObject({
      found: true,
      tags: seed.tags['acme/app'],
    });
    expect(await h.health.check()).toMatchObject({ ok: true });
    expect(h.errorLines()).toEqual([]);
  });

  it('wrong credentials: token_invalid with the Basic line, generic envelope, readiness false', async () => {
    const h = harness(registry.url, 'not-the-password', { username: creds.username });
    const err = (await h.client.getManifest('acme/app', 'v1.1.0').catch((e: unknown) => e)) as UpstreamError;
    expect(err.reason).toBe('token_invalid');
    expect(err.toOciError().toEnvelope()).toEqual(GENERIC_502);
    expect(h.errorLines()[0].msg).toBe(LINES.basicRefused);
    expect(await h.failures('token_invalid')).toBe(1);
    // The readiness probe right after is held back (no second failed login upstream) and says why.
    const health = await h.health.check();
    expect(health).toMatchObject({ ok: false, reason: 'token_invalid' });
    expect(health.message).toBe(
      `${LINES.basicRefused} Backing off: GET /v2/ was not sent; the next attempt upstream is in 20 s.`,
    );
    expect(h.raw()).not.toContain('not-the-password');
  });

  it('an upstream killed mid-blob surfaces as an error', async () => {
    const own = await startRegistry({ copyFrom: seed.storageDir, htpasswd: creds });
    try {
      const h = harness(own.url, creds.password, { username: creds.username, retries: 0 });
      const layer = seedManifestFor(seedImage(seed, 'acme/big', '1.0'), 'amd64').layers[0];
      const blob = (await h.client.getBlob('acme/big', parseDigest(layer.digest))) as UpstreamBlob;
      const err = (await drain(blob, () => own.kill()).catch((e: unknown) => e)) as UpstreamError;
      expect(err).toBeInstanceOf(UpstreamError);
      expect(err.reason).toBe('truncated');
      expect(await h.failures('truncated')).toBe(1);
    } finally {
      await own.stop();
    }
  });

  it('rejects a blob whose stored bytes do not match its digest', async () => {
    const own = await startRegistry({ copyFrom: seed.storageDir, htpasswd: creds });
    try {
      const config = seedManifestFor(seedImage(seed, 'acme/tool', '1.0.0'), 'amd64').config;
      const hex = config.digest.slice('sha256:'.length);
      const data = join(own.storageDir, 'docker/registry/v2/blobs/sha256', hex.slice(0, 2), hex, 'data');
      // The data file is hard-linked to the shared seed: replace the link, never write through it.
      const original = await readFile(data);
      const corrupt = Buffer.from(original);
      corrupt[0] ^= 0xff;
      await rm(data);
      await writeFile(data, corrupt);

      const h = harness(own.url, creds.password, { username: creds.username });
      const blob = (await h.client.getBlob('acme/tool', parseDigest(config.digest))) as UpstreamBlob;
      await expect(drain(blob)).rejects.toMatchObject({ reason: 'digest_mismatch' });
      expect(await h.failures('digest_mismatch')).toBe(1);
      expect(String(h.errorLines()[0].msg)).toContain(`acme/tool blob ${config.digest} as sha256:`);
    } finally {
      await own.stop();
    }
  });
});
