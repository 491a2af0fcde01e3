import * as fc from 'fast-check';
import { rawRequest } from './hardening-stack';
import {
  aliceToken,
  b64,
  bearer,
  describeAfterwards,
  expectOciClientError,
  MARKER,
  s,
  useHostileInputStack,
} from './hostile-input.fixture';

/** Hostile paths and headers: each answered with a 4xx OCI envelope, never a 5xx, and nothing written. */
describe('hostile input', () => {
  useHostileInputStack();

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

  describeAfterwards();
});
