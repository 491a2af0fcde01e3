import { UpstreamError } from './upstream.error';
import {
  closeFakes,
  MANIFEST,
  MANIFEST_DIGEST,
  PAT,
  forgejoLike,
  serveManifest,
  setup,
} from './testing/upstream-fakes';

// The client through its facade, against local HTTP fakes (testing/upstream-fakes.ts).

afterEach(closeFakes);

describe('UpstreamRegistryClient: Bearer tokens', () => {
  it('fetches a token with an empty username, reuses it, and fetches a new one near expiry', async () => {
    const clock = { exp: 0 };
    const up = await forgejoLike({ jwtExp: () => clock.exp });
    up.routes.set('/v2/acme/app/manifests/v1', serveManifest(MANIFEST, MANIFEST_DIGEST));
    const { client, clock: c } = setup(up.f.url);
    clock.exp = c.t / 1000 + 3600;

    for (let i = 0; i < 3; i++) {
      const r = await client.getManifest('acme/app', 'v1');
      expect(r).toMatchObject({
        found: true,
        digest: MANIFEST_DIGEST,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
      });
    }
    expect(up.minted()).toBe(1);
    const tokenHits = up.f.hits.filter((h) => h.path.startsWith('/v2/token'));
    expect(tokenHits[0].path).toBe('/v2/token?service=container_registry&scope=*');
    expect(tokenHits[0].authorization).toBe(`Basic ${Buffer.from(`:${PAT}`).toString('base64')}`);

    // 30 s before the JWT's exp the cached token is no longer used.
    c.t += 3600_000 - 29_000;
    clock.exp = c.t / 1000 + 3600;
    await client.getManifest('acme/app', 'v1');
    expect(up.minted()).toBe(2);
    await client.close();
  });

  it('refreshes a cached token once on a 401 and then succeeds', async () => {
    const up = await forgejoLike({ jwtExp: () => Date.now() / 1000 + 3600 });
    up.routes.set('/v2/acme/app/manifests/v1', serveManifest(MANIFEST, MANIFEST_DIGEST));
    const { client, errorLines } = setup(up.f.url);
    await client.getManifest('acme/app', 'v1');
    up.revokeAllJwts();
    await expect(client.getManifest('acme/app', 'v1')).resolves.toMatchObject({ found: true });
    expect(up.minted()).toBe(2);
    expect(errorLines()).toEqual([]);
    await client.close();
  });

  it('fails with token_invalid after one refresh when the token stays refused, logging the fix once', async () => {
    let tokenOk = true;
    const up = await forgejoLike({ jwtExp: () => Date.now() / 1000 + 3600, tokenOk: () => tokenOk });
    up.routes.set('/v2/acme/app/manifests/v1', serveManifest(MANIFEST, MANIFEST_DIGEST));
    const { client, errorLines, failures, log } = setup(up.f.url);
    await client.getManifest('acme/app', 'v1');
    up.revokeAllJwts();
    tokenOk = false;
    const err = await client.getManifest('acme/app', 'v1').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UpstreamError);
    expect((err as UpstreamError).reason).toBe('token_invalid');
    expect((err as UpstreamError).toOciError().status).toBe(502);
    expect(up.f.hits.filter((h) => h.path.startsWith('/v2/token'))).toHaveLength(2);
    expect(errorLines()).toHaveLength(1);
    expect(errorLines()[0]).toMatchObject({
      reason: 'token_invalid',
      msg: 'Forgejo rejected the service token (401 authGroup.Verify): FORGEJO_API_TOKEN is invalid, expired or revoked. Fix: create a new token with scope read:package for the user that can read the owner and set FORGEJO_API_TOKEN.',
    });
    expect(await failures('token_invalid')).toBe(1);
    expect(log.raw()).not.toContain(PAT);
    await client.close();
  });

  it('fetches one token for concurrent requests', async () => {
    const up = await forgejoLike({ jwtExp: () => Date.now() / 1000 + 3600 });
    up.routes.set('/v2/acme/app/manifests/v1', serveManifest(MANIFEST, MANIFEST_DIGEST));
    const { client } = setup(up.f.url);
    await Promise.all(Array.from({ length: 5 }, () => client.getManifest('acme/app', 'v1')));
    expect(up.minted()).toBe(1);
    expect(up.f.hits.filter((h) => h.path === '/v2/')).toHaveLength(1);
    await client.close();
  });
});
