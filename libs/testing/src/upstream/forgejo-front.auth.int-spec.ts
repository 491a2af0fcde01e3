import { decodeJwt, decodeProtectedHeader } from 'jose';
import { generatePat } from './forgejo-front';
import {
  bearer,
  customerPat,
  front,
  noScopePat,
  publicOnlyPat,
  readPat,
  seed,
  tokenFor,
  unknownPat,
  useSeededForgejoFront,
} from './forgejo-front.fixture';
import { basicAuth, probe } from './http-probe';
import { seedImage } from './seed';

// The front's challenge and token endpoint, bad credentials, scopes and owners, and how long its
// JWTs live. Content: forgejo-front.content.int-spec.ts; lists and faults:
// forgejo-front.lists-faults.int-spec.ts.

const CHALLENGE_BODY = { errors: [{ code: 'UNAUTHORIZED', message: '' }] };

describe('Forgejo front: auth and error behaviour of the Forgejo container registry', () => {
  useSeededForgejoFront();

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
});
