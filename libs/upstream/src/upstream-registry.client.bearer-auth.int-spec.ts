import { FrontRequestRecord, generatePat, seedImage, startRegistry } from '@gatehouse/testing/upstream';
import { parseDigest } from '@gatehouse/oci';
import { UpstreamError } from './upstream.error';
import { UpstreamManifest } from './upstream.types';
import {
  front,
  GENERIC_502,
  Harness,
  LINES,
  noScopePat,
  outsiderPat,
  publicOnlyPat,
  readPat,
  seed,
  sha256,
  tokenRequests,
  unknownPat,
  useClientHarness,
  useForgejoFrontUpstream,
} from './upstream-registry.client.fixture';

// The client against the Forgejo front (Bearer challenge, {"token"} answers, Forgejo's text
// errors): its tokens, what each refusal logs and counts, referrers and readiness. Blobs,
// manifests and tags: upstream-registry.client.bearer-transfer.int-spec.ts.

const harness = useClientHarness();

describe('UpstreamRegistryClient against the Forgejo front (Bearer)', () => {
  useForgejoFrontUpstream();

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
