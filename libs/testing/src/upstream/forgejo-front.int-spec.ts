import { decodeJwt, decodeProtectedHeader } from 'jose';
import { request } from 'undici';
import { ForgejoFront, generatePat, startForgejoFront } from './forgejo-front';
import { basicAuth, digestOf, probe } from './http-probe';
import { MediaTypes } from './image-builder';
import { startRegistry, RegistryProcess } from './registry-process';
import { prepareSeededStorage, seedImage, seedManifestFor, SeedInfo } from './seed';

const CHALLENGE_BODY = { errors: [{ code: 'UNAUTHORIZED', message: '' }] };

describe('Forgejo front: auth and error behaviour of the Forgejo container registry', () => {
  let seed: SeedInfo;
  let registry: RegistryProcess;
  let front: ForgejoFront;
  const readPat = generatePat('read');
  const noScopePat = generatePat('no-scope');
  const publicOnlyPat = generatePat('public-only');
  const customerPat = generatePat('customer');
  const unknownPat = generatePat('never-issued');
  const upstreamCreds = { username: 'forgejo', password: 'storage-pw' };

  const tokenFor = async (pat: string, username = ''): Promise<string> => {
    const res = await probe(`${front.url}/v2/token`, {
      headers: { authorization: basicAuth(username, pat) },
    });
    expect(res.status).toBe(200);
    return JSON.parse(res.text).token as string;
  };
  const bearer = (jwt: string): Record<string, string> => ({ authorization: `Bearer ${jwt}` });

  beforeAll(async () => {
    seed = await prepareSeededStorage();
    registry = await startRegistry({ copyFrom: seed.storageDir, htpasswd: upstreamCreds });
    front = await startForgejoFront({
      upstreamUrl: registry.url,
      upstreamCreds,
      knownOwners: ['acme', 'other'],
      privateOwners: ['other'],
      userOwners: { customer: ['acme'] },
      tokens: {
        [readPat]: { scopes: ['read:package'] },
        [noScopePat]: { scopes: ['read:repository'] },
        [publicOnlyPat]: { scopes: ['public-only', 'read:package'] },
        [customerPat]: { scopes: ['read:package'], user: 'customer' },
      },
    });
  });

  afterAll(async () => {
    await front?.stop();
    await registry?.stop();
  });

  describe('challenge and token endpoint', () => {
    it.each(['/v2/', '/v2', '/v2/_catalog', '/v2/acme/app/manifests/v1.0.0', '/v2/nobody/x/blobs/sha256:00'])(
      'answers anonymous %s with the exact Bearer challenge',
      async (path) => {
        const res = await probe(`${front.url}${path}`);
        expect(res.status).toBe(401);
        expect(res.headers['www-authenticate']).toBe(
          `Bearer realm="${front.url}/v2/token",service="container_registry",scope="*"`,
        );
        expect(res.headers['content-type']).toBe('application/json');
        expect(res.headers['docker-distribution-api-version']).toBe('registry/2.0');
        expect(JSON.parse(res.text)).toEqual(CHALLENGE_BODY);
      },
    );

    it.each([
      ['an empty username', `:${readPat}`],
      ['any username', `someone:${readPat}`],
      ['the PAT as username and no password', `${readPat}:`],
    ])('mints a JWT for Basic with %s, carrying only a token field', async (_label, pair) => {
      const res = await probe(
        `${front.url}/v2/token?scope=repository:acme/app:pull&service=container_registry`,
        {
          headers: { authorization: 'Basic ' + Buffer.from(pair).toString('base64') },
        },
      );
      expect(res.status).toBe(200);
      expect(res.headers['content-type']).toBe('application/json;charset=utf-8');
      const body = JSON.parse(res.text);
      expect(Object.keys(body)).toEqual(['token']);
      expect(decodeProtectedHeader(body.token).alg).toBe('HS256');
      const claims = decodeJwt(body.token);
      expect(claims.Scope).toBe('read:package');
      expect(claims.exp! - claims.nbf!).toBe(24 * 3600);
    });

    it('answers POST /v2/token with 404', async () => {
      const res = await probe(`${front.url}/v2/token`, {
        method: 'POST',
        headers: { authorization: basicAuth('', readPat) },
      });
      expect(res.status).toBe(404);
    });

    it('answers anonymous /v2/token with the challenge (REQUIRE_SIGNIN_VIEW)', async () => {
      const res = await probe(`${front.url}/v2/token`);
      expect(res.status).toBe(401);
      expect(res.headers['www-authenticate']).toMatch(/^Bearer realm=/);
    });

    it('re-mints a JWT sent as Bearer to /v2/token with the same scope', async () => {
      const jwt = await tokenFor(noScopePat);
      const res = await probe(`${front.url}/v2/token`, { headers: bearer(jwt) });
      expect(res.status).toBe(200);
      expect(decodeJwt(JSON.parse(res.text).token).Scope).toBe('read:repository');
    });
  });

  describe('bad credentials', () => {
    const expectVerifyFailure = (res: {
      status: number;
      headers: Record<string, string>;
      text: string;
    }): void => {
      expect(res.status).toBe(401);
      expect(res.headers['content-type']).toBe('text/plain; charset=utf-8');
      expect(res.text).toBe('authGroup.Verify\n');
      expect(res.headers['www-authenticate']).toBeUndefined();
    };

    it.each([
      ['an unknown PAT', () => basicAuth('', unknownPat)],
      ['a PAT of the wrong shape', () => basicAuth('', readPat.toUpperCase())],
    ])('answers %s with text authGroup.Verify and no challenge', async (_label, header) => {
      expectVerifyFailure(await probe(`${front.url}/v2/token`, { headers: { authorization: header() } }));
      expectVerifyFailure(
        await probe(`${front.url}/v2/acme/app/manifests/v1.0.0`, { headers: { authorization: header() } }),
      );
    });

    it('rejects a malformed or foreign JWT, and a PAT sent as Bearer', async () => {
      expectVerifyFailure(
        await probe(`${front.url}/v2/acme/app/tags/list`, { headers: bearer('not.a.jwt') }),
      );
      expectVerifyFailure(await probe(`${front.url}/v2/acme/app/tags/list`, { headers: bearer(readPat) }));
      expectVerifyFailure(
        await probe(`${front.url}/v2/acme/app/tags/list`, { headers: { authorization: `token ${readPat}` } }),
      );
    });

    it('fails the ping sent with valid Basic credentials, and answers the ping with a JWT with 200 and no body', async () => {
      expectVerifyFailure(
        await probe(`${front.url}/v2/`, { headers: { authorization: basicAuth('', readPat) } }),
      );
      const ok = await probe(`${front.url}/v2/`, { headers: bearer(await tokenFor(readPat)) });
      expect(ok.status).toBe(200);
      expect(ok.headers['content-length']).toBe('0');
      expect(ok.headers['docker-distribution-api-version']).toBe('registry/2.0');
      expect(ok.body.length).toBe(0);
    });

    it('accepts the PAT in Basic directly on image routes', async () => {
      const res = await probe(`${front.url}/v2/acme/app/manifests/v1.0.0`, {
        headers: { authorization: basicAuth('x', readPat) },
      });
      expect(res.status).toBe(200);
    });
  });

  describe('scopes and owners', () => {
    it('gives a PAT without read:package a token, a ping and a catalog, then reqPackageAccess on image routes', async () => {
      const jwt = await tokenFor(noScopePat);
      expect((await probe(`${front.url}/v2/`, { headers: bearer(jwt) })).status).toBe(200);
      expect((await probe(`${front.url}/v2/_catalog`, { headers: bearer(jwt) })).status).toBe(200);
      for (const headers of [bearer(jwt), { authorization: basicAuth('', noScopePat) }]) {
        const res = await probe(`${front.url}/v2/acme/app/manifests/v1.0.0`, { headers });
        expect(res.status).toBe(401);
        expect(res.headers['www-authenticate']).toBe('Basic realm="Gitea Package API"');
        expect(res.text).toBe('reqPackageAccess\n');
      }
    });

    it('refuses a public-only token on a private owner with 403 reqToken', async () => {
      const jwt = await tokenFor(publicOnlyPat);
      const secret = await probe(`${front.url}/v2/other/secret/manifests/1.0`, { headers: bearer(jwt) });
      expect(secret.status).toBe(403);
      expect(secret.text).toBe('reqToken\n');
      expect(
        (await probe(`${front.url}/v2/acme/app/manifests/v1.0.0`, { headers: bearer(jwt) })).status,
      ).toBe(200);
    });

    it('answers an unknown owner with text 404 Not found.', async () => {
      const res = await probe(`${front.url}/v2/nobody/app/manifests/v1.0.0`, {
        headers: bearer(await tokenFor(readPat)),
      });
      expect(res.status).toBe(404);
      expect(res.headers['content-type']).toBe('text/plain; charset=utf-8');
      expect(res.text).toBe('Not found.\n');
    });

    it('limits a user to the owners it can read, in the catalog and on image routes', async () => {
      const jwt = await tokenFor(customerPat);
      const catalog = await probe(`${front.url}/v2/_catalog`, { headers: bearer(jwt) });
      expect(JSON.parse(catalog.text)).toEqual({ repositories: ['acme/app', 'acme/big', 'acme/tool'] });
      const denied = await probe(`${front.url}/v2/other/secret/manifests/1.0`, { headers: bearer(jwt) });
      expect(denied.status).toBe(401);
      expect(denied.text).toBe('reqPackageAccess\n');
    });

    it('matches the owner case-insensitively and rejects invalid image names', async () => {
      const jwt = await tokenFor(readPat);
      const res = await probe(`${front.url}/v2/ACME/app/manifests/v1.0.0`, { headers: bearer(jwt) });
      expect(res.headers['docker-content-digest']).toBe(seedImage(seed, 'acme/app', 'v1.0.0').digest);
      const bad = await probe(`${front.url}/v2/acme/App/manifests/v1.0.0`, { headers: bearer(jwt) });
      expect(bad.status).toBe(400);
      expect(JSON.parse(bad.text).errors[0].code).toBe('NAME_INVALID');
    });
  });

  describe('JWT lifetime', () => {
    it('keeps issued JWTs valid after the PAT is revoked, until invalidateJwts()', async () => {
      const pat = generatePat();
      front.addToken(pat, { scopes: ['read:package'] });
      const jwt = await tokenFor(pat);
      front.revokeToken(pat);
      expect(
        (await probe(`${front.url}/v2/token`, { headers: { authorization: basicAuth('', pat) } })).status,
      ).toBe(401);
      expect(
        (await probe(`${front.url}/v2/acme/tool/manifests/1.0.0`, { headers: bearer(jwt) })).status,
      ).toBe(200);
      const other = await tokenFor(readPat);
      front.invalidateJwts();
      for (const t of [jwt, other]) {
        const res = await probe(`${front.url}/v2/acme/tool/manifests/1.0.0`, { headers: bearer(t) });
        expect(res.status).toBe(401);
        expect(res.text).toBe('authGroup.Verify\n');
      }
    });

    it('expires JWTs after the configured TTL', async () => {
      front.setJwtTtl(1);
      try {
        const jwt = await tokenFor(readPat);
        const claims = decodeJwt(jwt);
        expect(claims.exp! - claims.nbf!).toBe(1);
        expect((await probe(`${front.url}/v2/`, { headers: bearer(jwt) })).status).toBe(200);
        await new Promise((r) => setTimeout(r, (claims.exp! + 1) * 1000 - Date.now()));
        expect((await probe(`${front.url}/v2/`, { headers: bearer(jwt) })).text).toBe('authGroup.Verify\n');
      } finally {
        front.setJwtTtl(24 * 3600);
      }
    });
  });

  describe('manifests', () => {
    it('ignores Accept and returns the stored media type, digest and ETag', async () => {
      const image = seedImage(seed, 'acme/app', 'v1.0.0');
      const res = await probe(`${front.url}/v2/acme/app/manifests/v1.0.0`, {
        headers: { ...bearer(await tokenFor(readPat)), accept: MediaTypes.dockerManifest },
      });
      expect(res.status).toBe(200);
      expect(res.headers['content-type']).toBe(MediaTypes.ociIndex);
      expect(res.headers['docker-content-digest']).toBe(image.digest);
      expect(res.headers.etag).toBe(`"${image.digest}"`);
      expect(res.headers['content-length']).toBe(String(image.size));
      expect(res.headers['cache-control']).toBe('private, max-age=300');
    });

    it('answers HEAD with the same headers and no body, and If-None-Match with 304', async () => {
      const image = seedImage(seed, 'acme/tool', '1.0.0');
      const jwt = await tokenFor(readPat);
      const head = await probe(`${front.url}/v2/acme/tool/manifests/1.0.0`, {
        method: 'HEAD',
        headers: bearer(jwt),
      });
      expect(head.status).toBe(200);
      expect(head.headers).toMatchObject({
        'content-type': MediaTypes.dockerManifest,
        'docker-content-digest': image.digest,
        etag: `"${image.digest}"`,
        'content-length': String(image.size),
      });
      const cached = await probe(`${front.url}/v2/acme/tool/manifests/${image.digest}`, {
        headers: { ...bearer(jwt), 'if-none-match': `"${image.digest}"` },
      });
      expect(cached.status).toBe(304);
    });

    it('treats tags case-insensitively', async () => {
      const res = await probe(`${front.url}/v2/acme/app/manifests/V1.1.0`, {
        method: 'HEAD',
        headers: bearer(await tokenFor(readPat)),
      });
      expect(res.headers['docker-content-digest']).toBe(seedImage(seed, 'acme/app', 'v1.1.0').digest);
    });

    it.each(['nope', '-invalid-', 'sha256:' + '0'.repeat(64)])(
      'answers unknown reference %s with MANIFEST_UNKNOWN and an empty message',
      async (ref) => {
        const res = await probe(`${front.url}/v2/acme/app/manifests/${ref}`, {
          headers: bearer(await tokenFor(readPat)),
        });
        expect(res.status).toBe(404);
        expect(res.headers['content-type']).toBe('application/json');
        expect(JSON.parse(res.text)).toEqual({ errors: [{ code: 'MANIFEST_UNKNOWN', message: '' }] });
      },
    );

    it('answers an unknown image under a known owner with MANIFEST_UNKNOWN, not NAME_UNKNOWN', async () => {
      const res = await probe(`${front.url}/v2/acme/missing/manifests/v1`, {
        headers: bearer(await tokenFor(readPat)),
      });
      expect(JSON.parse(res.text).errors[0].code).toBe('MANIFEST_UNKNOWN');
    });
  });

  describe('blobs', () => {
    const layer = (): { digest: string; size: number } =>
      seedManifestFor(seedImage(seed, 'acme/app', 'v1.0.0'), 'arm64').layers[1];

    it('answers HEAD with digest, ETag and length but no Content-Type', async () => {
      const res = await probe(`${front.url}/v2/acme/app/blobs/${layer().digest}`, {
        method: 'HEAD',
        headers: bearer(await tokenFor(readPat)),
      });
      expect(res.status).toBe(200);
      expect(res.headers['docker-content-digest']).toBe(layer().digest);
      expect(res.headers.etag).toBe(`"${layer().digest}"`);
      expect(res.headers['content-length']).toBe(String(layer().size));
      expect(res.headers['content-type']).toBeUndefined();
    });

    it('streams the big blob byte-exact', async () => {
      const big = seedImage(seed, 'acme/big', '1.0').manifests[0].layers[0];
      const got = await digestOf(
        `${front.url}/v2/acme/big/blobs/${big.digest}`,
        bearer(await tokenFor(readPat)),
      );
      expect(got).toMatchObject({ status: 200, digest: big.digest, size: big.size });
    });

    it('honours Range, or ignores it like v11 when range support is off', async () => {
      const jwt = await tokenFor(readPat);
      const url = `${front.url}/v2/acme/app/blobs/${layer().digest}`;
      const partial = await probe(url, { headers: { ...bearer(jwt), range: 'bytes=0-9' } });
      expect(partial.status).toBe(206);
      expect(partial.headers['content-range']).toBe(`bytes 0-9/${layer().size}`);
      expect(partial.body.length).toBe(10);
      front.setRangeSupport(false);
      try {
        const full = await probe(url, { headers: { ...bearer(jwt), range: 'bytes=0-9' } });
        expect(full.status).toBe(200);
        expect(full.body.length).toBe(layer().size);
        expect(full.headers['accept-ranges']).toBeUndefined();
      } finally {
        front.setRangeSupport(true);
      }
    });

    it.each(['sha256:' + 'f'.repeat(64), 'sha256:short', 'md5:abc'])(
      'answers blob %s with BLOB_UNKNOWN',
      async (digest) => {
        const res = await probe(`${front.url}/v2/acme/app/blobs/${digest}`, {
          headers: bearer(await tokenFor(readPat)),
        });
        expect(res.status).toBe(404);
        expect(JSON.parse(res.text).errors[0].code).toBe('BLOB_UNKNOWN');
      },
    );

    it('does not serve a blob under an image that does not reference it', async () => {
      const res = await probe(`${front.url}/v2/acme/tool/blobs/${layer().digest}`, {
        headers: bearer(await tokenFor(readPat)),
      });
      expect(res.status).toBe(404);
    });

    it('redirects to a presigned URL on another origin that refuses Authorization, in serve-direct mode', async () => {
      const jwt = await tokenFor(readPat);
      front.setServeDirect(true);
      try {
        const res = await request(`${front.url}/v2/acme/app/blobs/${layer().digest}`, {
          headers: bearer(jwt),
        });
        await res.body.dump();
        expect(res.statusCode).toBe(307);
        expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
        expect(res.headers['docker-content-digest']).toBeUndefined();
        expect(res.headers['content-length']).toBeUndefined();
        const location = String(res.headers.location);
        expect(new URL(location).origin).toBe(front.storageUrl);
        expect(new URL(location).searchParams.get('X-Amz-Expires')).toBe('300');

        const withAuth = await probe(location, { headers: bearer(jwt) });
        expect(withAuth.status).toBe(400);
        expect(withAuth.text).toContain('InvalidArgument');
        const got = await digestOf(location);
        expect(got).toMatchObject({ status: 200, digest: layer().digest, size: layer().size });
        const ranged = await probe(location, { headers: { range: 'bytes=5-' } });
        expect(ranged.status).toBe(206);
        expect(ranged.body.length).toBe(layer().size - 5);
        const tampered = await probe(location.replace(/X-Amz-Signature=[0-9a-f]/, 'X-Amz-Signature=z'));
        expect(tampered.status).toBe(403);

        const manifest = await request(`${front.url}/v2/acme/app/manifests/v1.0.0`, { headers: bearer(jwt) });
        await manifest.body.dump();
        expect(manifest.statusCode).toBe(307);
        const head = await probe(`${front.url}/v2/acme/app/manifests/v1.0.0`, {
          method: 'HEAD',
          headers: bearer(jwt),
        });
        expect(head.status).toBe(200);
      } finally {
        front.setServeDirect(false);
      }
    });

    it('refuses a presigned URL once it has expired', async () => {
      const jwt = await tokenFor(readPat);
      front.setServeDirect(true);
      front.setPresignTtl(0);
      try {
        const res = await request(`${front.url}/v2/acme/app/blobs/${layer().digest}`, {
          headers: bearer(jwt),
        });
        await res.body.dump();
        await new Promise((r) => setTimeout(r, 1100));
        const expired = await probe(String(res.headers.location));
        expect(expired.status).toBe(403);
        expect(expired.text).toContain('expired');
      } finally {
        front.setPresignTtl(300);
        front.setServeDirect(false);
      }
    });
  });

  describe('tags/list, _catalog and referrers', () => {
    it('sends Link on every non-empty page and answers the extra page with [] and no Link', async () => {
      const jwt = await tokenFor(readPat);
      const first = await probe(`${front.url}/v2/acme/app/tags/list`, { headers: bearer(jwt) });
      expect(JSON.parse(first.text)).toEqual({
        name: 'acme/app',
        tags: ['latest', 'v1.0.0', 'v1.1.0', 'v2.0.0-rc.1'],
      });
      expect(first.headers.link).toBe('</v2/acme/app/tags/list?last=v2.0.0-rc.1>; rel="next"');
      const extra = await probe(
        `${front.url}${first.headers.link.slice(1, first.headers.link.indexOf('>'))}`,
        { headers: bearer(jwt) },
      );
      expect(JSON.parse(extra.text)).toEqual({ name: 'acme/app', tags: [] });
      expect(extra.headers.link).toBeUndefined();
      const paged = await probe(`${front.url}/v2/acme/app/tags/list?n=2`, { headers: bearer(jwt) });
      expect(JSON.parse(paged.text).tags).toEqual(['latest', 'v1.0.0']);
      expect(paged.headers.link).toBe('</v2/acme/app/tags/list?last=v1.0.0&n=2>; rel="next"');
    });

    it('answers tags/list of an unknown image with NAME_UNKNOWN', async () => {
      const res = await probe(`${front.url}/v2/acme/missing/tags/list`, {
        headers: bearer(await tokenFor(readPat)),
      });
      expect(res.status).toBe(404);
      expect(JSON.parse(res.text).errors[0].code).toBe('NAME_UNKNOWN');
    });

    it('lists the catalog sorted, with a Link only on a full page', async () => {
      const jwt = await tokenFor(readPat);
      const all = await probe(`${front.url}/v2/_catalog`, { headers: bearer(jwt) });
      expect(JSON.parse(all.text).repositories).toEqual([
        'acme/app',
        'acme/big',
        'acme/tool',
        'other/secret',
      ]);
      expect(all.headers.link).toBeUndefined();
      const page = await probe(`${front.url}/v2/_catalog?n=2`, { headers: bearer(jwt) });
      expect(page.headers.link).toBe('</v2/_catalog?last=acme%2Fbig&n=2>; rel="next"');
    });

    it('answers the referrers API with 404 and an empty body', async () => {
      const digest = seedImage(seed, 'acme/app', 'v1.0.0').digest;
      const res = await probe(`${front.url}/v2/acme/app/referrers/${digest}`, {
        headers: bearer(await tokenFor(readPat)),
      });
      expect(res.status).toBe(404);
      expect(res.body.length).toBe(0);
      expect(front.requests.at(-1)).toMatchObject({
        kind: 'referrers',
        repository: 'acme/app',
        reference: digest,
      });
    });

    it('answers the referrers API as an OCI 1.1 registry once switched on, and goes back to the 404', async () => {
      const digest = seedImage(seed, 'acme/app', 'v1.0.0').digest;
      const descriptor = {
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        digest: `sha256:${'12'.repeat(32)}`,
        size: 10,
        artifactType: 'application/example',
      };
      const jwt = await tokenFor(readPat);
      front.setReferrersApi(true);
      try {
        front.addReferrer('acme/app', digest, descriptor);
        const res = await probe(`${front.url}/v2/acme/app/referrers/${digest}`, { headers: bearer(jwt) });
        expect([res.status, res.headers['content-type']]).toEqual([
          200,
          'application/vnd.oci.image.index.v1+json',
        ]);
        expect(JSON.parse(res.text)).toEqual({
          schemaVersion: 2,
          mediaType: 'application/vnd.oci.image.index.v1+json',
          manifests: [descriptor],
        });
        const other = await probe(`${front.url}/v2/acme/app/referrers/sha256:${'34'.repeat(32)}`, {
          headers: bearer(jwt),
        });
        expect([other.status, JSON.parse(other.text).manifests]).toEqual([200, []]);
      } finally {
        front.setReferrersApi(false);
      }
      const off = await probe(`${front.url}/v2/acme/app/referrers/${digest}`, { headers: bearer(jwt) });
      expect([off.status, off.body.length]).toEqual([404, 0]);
    });
  });

  describe('request counting and fault injection', () => {
    const blob = (): { digest: string; size: number } =>
      seedImage(seed, 'acme/tool', '1.0.0').manifests[0].layers[0];

    it('records every request with its kind and status', async () => {
      const jwt = await tokenFor(readPat);
      front.resetCounts();
      await probe(`${front.url}/v2/acme/tool/blobs/${blob().digest}`, { headers: bearer(jwt) });
      await probe(`${front.url}/v2/acme/tool/manifests/1.0.0`, { headers: bearer(jwt) });
      expect(
        front.countRequests((r) => r.kind === 'blob' && r.status === 200 && r.reference === blob().digest),
      ).toBe(1);
      expect(
        front.countRequests(
          (r) => r.kind === 'manifest' && r.repository === 'acme/tool' && r.auth === 'bearer',
        ),
      ).toBe(1);
      expect(front.countRequests()).toBe(2);
      front.resetCounts();
      expect(front.requests).toEqual([]);
    });

    it('cuts a blob after N bytes with the full length announced', async () => {
      const jwt = await tokenFor(readPat);
      front.setBlobBehaviour(blob().digest, 'cut-after:100');
      try {
        const res = await request(`${front.url}/v2/acme/tool/blobs/${blob().digest}`, {
          headers: bearer(jwt),
        });
        expect(res.headers['content-length']).toBe(String(blob().size));
        let received = 0;
        await expect(
          (async () => {
            for await (const chunk of res.body) received += (chunk as Buffer).length;
          })(),
        ).rejects.toThrow();
        expect(received).toBe(100);
      } finally {
        front.setBlobBehaviour(blob().digest, 'normal');
      }
    });

    it('trickles, hangs or fails a blob on demand', async () => {
      const jwt = await tokenFor(readPat);
      const url = `${front.url}/v2/acme/tool/blobs/${blob().digest}`;
      try {
        front.setBlobBehaviour(blob().digest, `trickle:${blob().size * 2}`);
        const started = Date.now();
        expect((await digestOf(url, bearer(jwt))).digest).toBe(blob().digest);
        expect(Date.now() - started).toBeGreaterThanOrEqual(150);

        front.setBlobBehaviour(blob().digest, 'hang');
        await expect(probe(url, { headers: bearer(jwt), headersTimeout: 300 })).rejects.toThrow(/timeout/i);

        front.setBlobBehaviour(blob().digest, 'fail:503');
        expect((await probe(url, { headers: bearer(jwt) })).status).toBe(503);
      } finally {
        front.setBlobBehaviour(blob().digest, 'normal');
      }
      expect((await probe(url, { headers: bearer(jwt) })).status).toBe(200);
    });
  });
});
