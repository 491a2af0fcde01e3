import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as fc from 'fast-check';
import { exportSPKI, SignJWT } from 'jose';
import { TokenSigningKey } from '@gatehouse/auth';
import { seedImage } from '@gatehouse/testing/upstream';
import {
  HardeningStack,
  Member,
  rawRequest,
  RawResponse,
  snapshotTree,
  startHardeningStack,
  treeDifference,
} from './hardening-stack';

/** A marker no legitimate file carries: hostile names embed it, and no file may ever be named after it. */
const MARKER = `hx${randomBytes(4).toString('hex')}`;

interface Envelope {
  errors: Array<{ code: string; message: string; detail?: unknown }>;
}

/** The contract for every hostile request: a 4xx with the OCI envelope, never a 5xx or a hang. */
function expectOciClientError(res: RawResponse, what: string, method = 'GET'): Envelope | null {
  const context = `${what} -> ${res.status} ${res.body.toString('utf8', 0, 300)}`;
  expect({ context, status: res.status >= 400 && res.status < 500 }).toEqual({ context, status: true });
  if (method === 'HEAD') return null;
  expect({ context, type: res.headers['content-type'] }).toEqual({
    context,
    type: expect.stringMatching(/^application\/json/),
  });
  const body = JSON.parse(res.body.toString('utf8')) as Envelope;
  expect({ context, ok: Array.isArray(body.errors) && body.errors.length > 0 }).toEqual({
    context,
    ok: true,
  });
  for (const e of body.errors) {
    expect(typeof e.code).toBe('string');
    expect(typeof e.message).toBe('string');
  }
  return body;
}

describe('hostile input', () => {
  let s: HardeningStack;
  let alice: Member;
  let aliceToken: string;
  let signingKey: TokenSigningKey;
  let before: Map<string, string>;
  let tmpBefore: Set<string>;

  beforeAll(async () => {
    s = await startHardeningStack();
    alice = await s.member({ 'acme/app': ['v1.0.0'] });
    aliceToken = await s.token(alice, ['repository:acme/app:pull']);
    signingKey = s.gw.app.get(TokenSigningKey);
    // Warm what a legitimate pull writes, so the hostile run may write nothing at all.
    const ok = await rawRequest(s.gw.port, {
      path: '/v2/acme/app/manifests/v1.0.0',
      headers: [['Authorization', `Bearer ${aliceToken}`]],
    });
    expect(ok.status).toBe(200);
    before = await snapshotTree(s.gw.dataDir);
    tmpBefore = new Set(await readdir(tmpdir()));
  });

  afterAll(async () => {
    await s?.stop();
  });

  const bearer = (): [string, string] => ['Authorization', `Bearer ${aliceToken}`];
  const digest = () => seedImage(s.seed, 'acme/app', 'v1.0.0').digest;

  describe('paths', () => {
    const paths: Array<[string, string]> = [
      ['dot-dot segments', `/v2/acme/../../../../tmp/${MARKER}/manifests/v1.0.0`],
      ['dot-dot as the name', '/v2/../manifests/v1.0.0'],
      ['dot segment', '/v2/acme/./app/manifests/v1.0.0'],
      ['encoded dot-dot', `/v2/acme/%2e%2e/%2e%2e/${MARKER}/manifests/v1.0.0`],
      ['encoded upper-case dot-dot', `/v2/acme/%2E%2E/${MARKER}/manifests/latest`],
      ['encoded slash in the name', `/v2/acme%2F..%2F${MARKER}/manifests/v1.0.0`],
      ['encoded slash in the tag', '/v2/acme/app/manifests/..%2F..%2Fsecret'],
      ['double-encoded', `/v2/acme/%252e%252e/${MARKER}/manifests/v1`],
      ['backslashes', `/v2/acme\\..\\..\\${MARKER}/manifests/v1.0.0`],
      ['backslash in the tag', '/v2/acme/app/manifests/..\\..\\etc'],
      ['encoded NUL in the name', `/v2/acme/app%00${MARKER}/manifests/v1.0.0`],
      ['encoded NUL in the tag', '/v2/acme/app/manifests/v1.0.0%00'],
      ['uppercase name', '/v2/ACME/App/manifests/v1.0.0'],
      ['overlong name', `/v2/acme/${'a'.repeat(300)}/manifests/v1.0.0`],
      ['overlong nested name', `/v2/${Array.from({ length: 200 }, () => 'ab').join('/')}/manifests/v1`],
      ['overlong tag', `/v2/acme/app/manifests/${'v'.repeat(129)}`],
      ['tag with a dash first', '/v2/acme/app/manifests/-v1'],
      ['unknown digest algorithm', `/v2/acme/app/blobs/md5:${'a'.repeat(32)}`],
      ['sha256 of the wrong length', `/v2/acme/app/blobs/sha256:${'a'.repeat(63)}`],
      ['sha256 too long', `/v2/acme/app/blobs/sha256:${'a'.repeat(65)}`],
      ['non-hex digest', `/v2/acme/app/blobs/sha256:${'g'.repeat(64)}`],
      ['uppercase hex digest', `/v2/acme/app/blobs/sha256:${'A'.repeat(64)}`],
      ['digest of dots', `/v2/acme/app/blobs/sha256:${'.'.repeat(64)}`],
      ['digest reference with traversal', `/v2/acme/app/manifests/sha256:../../${MARKER}`],
      ['empty segments', '/v2/acme//app/manifests/v1.0.0'],
      ['empty name', '/v2//manifests/v1.0.0'],
      ['trailing slash', '/v2/acme/app/manifests/v1.0.0/'],
      ['unknown route', '/v2/acme/app/whatever'],
      ['absolute-form request target', 'http://127.0.0.1:1/v2/acme/app/manifests/v1.0.0'],
      ['a very long query', `/v2/acme/app/tags/list?n=${'9'.repeat(5000)}`],
      ['tags list with a bad n', '/v2/acme/app/tags/list?n=-1'],
      ['tags list with an array n', '/v2/acme/app/tags/list?n=1&n=2'],
      ['catalog with a bad n', '/v2/_catalog?n=abc'],
    ];

    it.each(paths)('answers %s with a 4xx OCI envelope', async (what, path) => {
      for (const method of ['GET', 'HEAD']) {
        const res = await rawRequest(s.gw.port, { method, path, headers: [bearer()] });
        expectOciClientError(res, `${method} ${what} (${path.slice(0, 80)})`, method);
      }
    });

    it.each([
      ['overlong tag', `/v2/acme/app/manifests/${'v'.repeat(129)}`],
      ['tag with a dash first', '/v2/acme/app/manifests/-v1'],
      ['tag with a dot first', '/v2/acme/app/manifests/.v1'],
    ])('answers an invalid tag (%s) like an unknown one: 404 MANIFEST_UNKNOWN', async (what, path) => {
      for (const method of ['GET', 'HEAD']) {
        const res = await rawRequest(s.gw.port, { method, path, headers: [bearer()] });
        const body = expectOciClientError(res, `${method} ${what}`, method);
        expect({ what, method, status: res.status, code: body?.errors[0].code ?? null }).toEqual({
          what,
          method,
          status: 404,
          code: method === 'GET' ? 'MANIFEST_UNKNOWN' : null,
        });
      }
    });

    it('treats an odd `last` as a position in the entitled list, never as a path', async () => {
      for (const last of ['z'.repeat(4000), '%00', '..%2F..%2Fother%2Fsecret', `%2F${MARKER}`]) {
        const res = await rawRequest(s.gw.port, {
          path: `/v2/acme/app/tags/list?last=${last}`,
          headers: [bearer()],
        });
        expect(res.status).toBe(200);
        const body = JSON.parse(res.body.toString()) as { name: string; tags: string[] };
        expect(body.name).toBe('acme/app');
        for (const t of body.tags) expect(t).toBe('v1.0.0');
      }
    });

    it('never answers a raw byte the HTTP parser refuses with anything but a 4xx envelope', async () => {
      for (const path of [
        `/v2/acme/app\u0000/manifests/v1`,
        '/v2/acme/app/manifests/v1 HTTP/1.0\r\nX: y',
        `/v2/acme/\u00e9t\u00e9/manifests/v1`,
        '/v2/acme/app/manifests/\u007f',
      ]) {
        const res = await rawRequest(s.gw.port, { path, headers: [bearer()] });
        expectOciClientError(res, JSON.stringify(path));
      }
    });

    it('property: any string in a name, tag or digest position gets a 4xx envelope or a clean 404, never a 5xx', async () => {
      const segment = fc.oneof(
        fc.string({ maxLength: 40 }),
        fc.constantFrom('..', '.', '%2e%2e', '%2F', '%5C', '%00', '\\', 'ACME', 'a'.repeat(260), MARKER),
        fc.stringMatching(/^[a-z0-9._%\\-]{1,30}$/),
      );
      const pathArb = fc.oneof(
        fc
          .tuple(fc.array(segment, { minLength: 1, maxLength: 4 }), segment)
          .map(([name, tag]) => `/v2/${name.join('/')}/manifests/${tag}`),
        fc
          .tuple(fc.array(segment, { minLength: 1, maxLength: 4 }), segment)
          .map(([name, d]) => `/v2/${name.join('/')}/blobs/sha256:${d}`),
        fc.array(segment, { minLength: 1, maxLength: 4 }).map((name) => `/v2/${name.join('/')}/tags/list`),
      );
      await fc.assert(
        fc.asyncProperty(pathArb, async (path) => {
          // Bytes a request line cannot carry (and ? and #, which would end the path) are
          // percent-encoded, as a client would; the rest stays raw.
          const wire = [...path]
            .map((c) => (c <= ' ' || c >= '\u007f' || c === '?' || c === '#' ? encodeURIComponent(c) : c))
            .join('');
          const res = await rawRequest(s.gw.port, { path: wire, headers: [bearer()] });
          if (res.status === 200) {
            // Only a path that is a legitimate request may succeed.
            expect(wire).toMatch(/^\/v2\/acme\/app\//);
            return;
          }
          expectOciClientError(res, wire);
        }),
        { numRuns: 300 },
      );
    });
  });

  describe('headers', () => {
    it('answers a huge header with a 4xx envelope', async () => {
      const res = await rawRequest(s.gw.port, {
        path: '/v2/acme/app/manifests/v1.0.0',
        headers: [bearer(), ['X-Filler', 'a'.repeat(64 * 1024)]],
      });
      expectOciClientError(res, 'a 64 KiB header');
    });

    it('answers thousands of repeated headers with a 4xx envelope or serves normally', async () => {
      const headers: Array<[string, string]> = [bearer()];
      for (let i = 0; i < 3000; i++) headers.push(['X-Repeat', 'x']);
      const res = await rawRequest(s.gw.port, { path: '/v2/acme/app/manifests/v1.0.0', headers });
      expectOciClientError(res, '3000 repeated headers');
    });

    it('does not let a second Authorization header smuggle another token', async () => {
      const res = await rawRequest(s.gw.port, {
        path: '/v2/acme/app/manifests/v1.0.0',
        headers: [
          ['Authorization', 'Bearer not-a-token'],
          ['Authorization', `Bearer ${aliceToken}`],
        ],
      });
      expect(res.status).toBe(401);
      expectOciClientError(res, 'two Authorization headers');
    });

    const badAuthorization: Array<[string, string]> = [
      ['empty', ''],
      ['scheme only', 'Bearer'],
      ['Basic on /v2/', 'Basic ' + Buffer.from('a:b').toString('base64')],
      ['bearer of garbage', 'Bearer !!!!'],
      ['bearer of three dots', 'Bearer ...'],
      ['bearer of an empty JWT', 'Bearer e30.e30.'],
      ['bearer with two tokens', `Bearer ${'a'.repeat(10)} ${'b'.repeat(10)}`],
      ['a 12 KiB bearer', `Bearer ${'A'.repeat(12 * 1024)}`],
      ['an unknown scheme', 'Negotiate abc'],
      ['non-JSON JWT parts', 'Bearer aGVsbG8.aGVsbG8.aGVsbG8'],
      ['JWT header with a huge kid', `Bearer ${b64({ alg: 'ES256', kid: 'k'.repeat(4000) })}.${b64({})}.sig`],
    ];

    it.each(badAuthorization)(
      'answers a malformed Authorization (%s) on /v2/ with 401 and a challenge',
      async (_, value) => {
        const res = await rawRequest(s.gw.port, {
          path: '/v2/acme/app/manifests/v1.0.0',
          headers: [['Authorization', value]],
        });
        expect(res.status).toBe(401);
        expect(res.headers['www-authenticate']).toMatch(/^Bearer realm="/);
        expectOciClientError(res, value.slice(0, 40));
      },
    );
  });

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

  describe('afterwards', () => {
    it('wrote nothing new in DATA_DIR (cache included) and nothing named after a hostile path anywhere', async () => {
      const after = await snapshotTree(s.gw.dataDir);
      const changed = treeDifference(before, after).filter(
        // The blob index and the access key's last-use stamp live in PostgreSQL, not here; the
        // readiness probe writes and deletes its own file. Nothing else may change.
        (line) => !/\.readyz-\d+$/.test(line),
      );
      expect(changed).toEqual([]);
      const tmpNow = await readdir(tmpdir());
      const leaked = tmpNow.filter((n) => !tmpBefore.has(n) && n.includes(MARKER));
      expect(leaked).toEqual([]);
      for (const root of [tmpdir(), s.gw.dataDir, join(s.gw.dataDir, '..')]) {
        const tree = await snapshotTree(root, 3).catch(() => new Map<string, string>());
        expect([...tree.keys()].filter((p) => p.includes(MARKER))).toEqual([]);
      }
    });

    it('logged no unhandled error and never a 5xx', () => {
      const lines = s.gw.logs;
      const failures = lines.filter(
        (l) => l.msg === 'unhandled error' || l.msg === 'request failed' || Number(l.level) >= 50,
      );
      expect(failures.map((l) => JSON.stringify(l).slice(0, 300))).toEqual([]);
    });
  });
});

function b64(value: object): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}
