import { generateKeyPairSync } from 'node:crypto';
import * as fc from 'fast-check';
import { exportSPKI, SignJWT } from 'jose';
import { rawRequest } from './hardening-stack';
import {
  alice,
  aliceToken,
  b64,
  describeAfterwards,
  digest,
  expectOciClientError,
  MARKER,
  s,
  signingKey,
  useHostileInputStack,
} from './hostile-input.fixture';

/**
 * Forged tokens and hostile requests to the token endpoint: each refused with a 4xx OCI envelope,
 * never a 5xx, and nothing written.
 */
describe('hostile input', () => {
  useHostileInputStack();

  describe('forged tokens', () => {
    const claims = () => ({
      username: alice.username,
      akid: 'x',
      token_use: 'access',
      access: [{ type: 'repository', name: 'acme/app', actions: ['pull'] }],
    });
    const forge = async (
      mutate: (jwt: SignJWT) => SignJWT,
      key: Parameters<SignJWT['sign']>[0],
      alg = 'ES256',
    ): Promise<string> => {
      const now = Math.floor(Date.now() / 1000);
      const jwt = new SignJWT(claims())
        .setProtectedHeader({ alg, kid: signingKey.kid })
        .setIssuer(s.gw.config.auth.issuer)
        .setSubject('00000000-0000-0000-0000-000000000000')
        .setAudience(s.gw.config.registry.service)
        .setIssuedAt(now)
        .setNotBefore(now)
        .setExpirationTime(now + 300)
        .setJti('j');
      return mutate(jwt).sign(key);
    };

    const cases: Array<[string, () => Promise<string>]> = [
      [
        'alg none',
        async () => {
          const [, payload] = (await forge((j) => j, signingKey.privateKey)).split('.');
          return `${b64({ alg: 'none', typ: 'JWT' })}.${payload}.`;
        },
      ],
      [
        'HS256 keyed with the public key (PEM)',
        async () => forge((j) => j, Buffer.from(await exportSPKI(signingKey.publicKey)), 'HS256'),
      ],
      [
        'HS256 keyed with the public key (DER)',
        async () => forge((j) => j, signingKey.publicKey.export({ type: 'spki', format: 'der' }), 'HS256'),
      ],
      ['wrong audience', () => forge((j) => j.setAudience('registry.evil.example'), signingKey.privateKey)],
      ['wrong issuer', () => forge((j) => j.setIssuer('evil'), signingKey.privateKey)],
      [
        'expired',
        () =>
          forge(
            (j) =>
              j
                .setIssuedAt(Math.floor(Date.now() / 1000) - 3600)
                .setNotBefore(Math.floor(Date.now() / 1000) - 3600)
                .setExpirationTime(Math.floor(Date.now() / 1000) - 600),
            signingKey.privateKey,
          ),
      ],
      [
        'not yet valid',
        () => forge((j) => j.setNotBefore(Math.floor(Date.now() / 1000) + 3600), signingKey.privateKey),
      ],
      [
        'signed by another key with the same kid',
        () => forge((j) => j, generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey),
      ],
      [
        'the real token with its signature cut',
        async () => aliceToken.split('.').slice(0, 2).join('.') + '.',
      ],
      [
        'the real token with a changed payload',
        async () => {
          const [h, , sig] = aliceToken.split('.');
          return `${h}.${b64({ ...claims(), sub: 'someone-else' })}.${sig}`;
        },
      ],
    ];

    it.each(cases)(
      'refuses a token with %s: 401 invalid_token, envelope, nothing served',
      async (_, make) => {
        const token = await make();
        const res = await rawRequest(s.gw.port, {
          path: `/v2/acme/app/manifests/${digest()}`,
          headers: [['Authorization', `Bearer ${token}`]],
        });
        expect(res.status).toBe(401);
        expect(res.headers['www-authenticate']).toMatch(/error="invalid_token"/);
        expectOciClientError(res, _);
      },
    );

    it('refuses the same forgeries as refresh tokens at the token endpoint', async () => {
      for (const [what, make] of cases) {
        const token = await make();
        const res = await rawRequest(s.gw.port, {
          method: 'POST',
          path: '/auth/token',
          headers: [['Content-Type', 'application/x-www-form-urlencoded']],
          body: new URLSearchParams({
            grant_type: 'refresh_token',
            refresh_token: token,
            service: s.gw.host,
          }).toString(),
        });
        expect({ what, status: res.status }).toEqual({ what, status: 401 });
        expectOciClientError(res, what);
      }
    });
  });

  describe('token endpoint', () => {
    const tokenGet = (query: string, authorization?: string) =>
      rawRequest(s.gw.port, {
        path: `/auth/token?${query}`,
        headers: authorization === undefined ? [] : [['Authorization', authorization]],
      });

    const badBasic: Array<[string, string]> = [
      ['scheme only', 'Basic'],
      ['not base64', 'Basic !!!'],
      ['no colon', 'Basic ' + Buffer.from('justauser').toString('base64')],
      ['empty user and key', 'Basic ' + Buffer.from(':').toString('base64')],
      ['NUL in the username', 'Basic ' + Buffer.from(`${'a\u0000b'}:key`).toString('base64')],
      ['invalid UTF-8', 'Basic ' + Buffer.from([0xff, 0xfe, 0x3a, 0xc3]).toString('base64')],
      ['a 12 KiB value', 'Basic ' + 'QUFB'.repeat(3 * 1024)],
      ['traversal as the username', 'Basic ' + Buffer.from(`../../${MARKER}:x`).toString('base64')],
      ['Bearer at the token endpoint', `Bearer ${'a'.repeat(30)}`],
    ];

    it.each(badBasic)('refuses malformed Basic credentials (%s) with a 4xx envelope', async (what, value) => {
      const res = await tokenGet(`service=${s.gw.host}&scope=repository:acme/app:pull`, value);
      expectOciClientError(res, what);
      expect(res.body.toString()).not.toContain('"token"');
    });

    const odd: Array<[string, string]> = [
      ['traversal in the name', `repository:../../${MARKER}:pull`],
      ['encoded traversal', `repository:acme%2F..%2F${MARKER}:pull`],
      ['NUL', 'repository:acme/app%00:pull'],
      ['quotes (challenge injection)', 'repository:acme/app":pull'],
      ['CRLF', 'repository:acme/app%0d%0aX-Evil:%201:pull'],
      ['uppercase', 'repository:ACME/APP:pull'],
      ['no actions', 'repository:acme/app'],
      ['unknown type', 'superuser:all:*'],
      ['push and delete', 'repository:acme/app:push,delete'],
      ['a 2000-character name', `repository:acme/${'a'.repeat(2000)}:pull`],
      ['unicode', 'repository:acme/%C3%A9t%C3%A9:pull'],
      ['many colons', 'repository:a:b:c:d:e:pull'],
    ];

    it.each(odd)('never grants anything for a scope with %s', async (what, scope) => {
      const res = await tokenGet(`service=${encodeURIComponent(s.gw.host)}&scope=${scope}`, alice.basic);
      expect(res.status).toBeLessThan(500);
      if (res.status === 200) {
        const { token } = JSON.parse(res.body.toString()) as { token: string };
        const payload = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()) as {
          access: Array<{ name: string; actions: string[] }>;
        };
        // Only ever pull on a repository alice is entitled to.
        for (const g of payload.access)
          expect(g).toEqual({ type: 'repository', name: 'acme/app', actions: ['pull'] });
      } else {
        expectOciClientError(res, what);
      }
    });

    it('refuses 65 scopes at once with a 400 envelope', async () => {
      const scopes = Array.from({ length: 65 }, (_, i) => `scope=repository:acme/r${i}:pull`).join('&');
      const res = await tokenGet(`service=${s.gw.host}&${scopes}`, alice.basic);
      expect(res.status).toBe(400);
      expectOciClientError(res, '65 scopes');
    });

    it('refuses an oversized POST body with a 4xx envelope', async () => {
      const res = await rawRequest(s.gw.port, {
        method: 'POST',
        path: '/auth/token',
        headers: [['Content-Type', 'application/x-www-form-urlencoded']],
        body: `grant_type=password&username=a&password=${'p'.repeat(200 * 1024)}`,
      });
      expectOciClientError(res, '200 KiB form');
    });

    it('refuses a POST with a JSON body, a broken form and an unknown content type with a 4xx envelope', async () => {
      for (const [type, body] of [
        ['application/json', '{"grant_type":'],
        ['application/x-www-form-urlencoded', 'grant_type=%zz&&&==='],
        ['text/plain', 'grant_type=password'],
        ['multipart/form-data; boundary=x', '--x\r\n'],
      ]) {
        const res = await rawRequest(s.gw.port, {
          method: 'POST',
          path: '/auth/token',
          headers: [['Content-Type', type]],
          body,
        });
        expectOciClientError(res, `POST ${type}`);
      }
    });

    it('property: any query string at the token endpoint is a 200 or a 4xx envelope, never a 5xx', async () => {
      const param = fc.tuple(
        fc.constantFrom(
          'scope',
          'service',
          'account',
          'offline_token',
          'client_id',
          'grant_type',
          fc.string(),
        ),
        fc.string({ maxLength: 80 }),
      );
      await fc.assert(
        fc.asyncProperty(fc.array(param, { maxLength: 8 }), fc.boolean(), async (params, withCreds) => {
          const qs = params
            .map(([k, v]) => `${encodeURIComponent(String(k))}=${encodeURIComponent(v)}`)
            .join('&');
          const res = await tokenGet(qs, withCreds ? alice.basic : undefined);
          if (res.status !== 200) expectOciClientError(res, qs);
        }),
        { numRuns: 150 },
      );
    });
  });

  describeAfterwards();
});
