import { UpstreamError } from './upstream.error';
import {
  closeFakes,
  Handler,
  MANIFEST,
  MANIFEST_DIGEST,
  fake,
  serveManifest,
  setup,
  sha256,
} from './testing/upstream-fakes';

// The client through its facade, against local HTTP fakes (testing/upstream-fakes.ts).

afterEach(closeFakes);

describe('UpstreamRegistryClient: manifests', () => {
  async function anonymous(routes: Record<string, Handler>) {
    return fake((req, res) => {
      const route = routes[req.url!.split('?')[0]];
      if (route) return route(req, res);
      if (req.url === '/v2/') return void res.writeHead(200).end();
      res
        .writeHead(404, { 'content-type': 'application/json' })
        .end('{"errors":[{"code":"MANIFEST_UNKNOWN"}]}');
    });
  }

  it('returns bytes, media type and digest, and HEAD without a body', async () => {
    const f = await anonymous({ '/v2/acme/app/manifests/v1': serveManifest(MANIFEST, MANIFEST_DIGEST) });
    const { client } = setup(f.url);
    const got = await client.getManifest('acme/app', 'v1');
    expect(got).toEqual({
      found: true,
      body: MANIFEST,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      digest: MANIFEST_DIGEST,
      size: MANIFEST.length,
    });
    const head = await client.getManifest('acme/app', 'v1', { method: 'HEAD' });
    expect(head).toEqual({
      found: true,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      digest: MANIFEST_DIGEST,
      size: MANIFEST.length,
    });
    expect(f.hits.find((h) => h.method === 'GET' && h.path.includes('manifests'))).toBeDefined();
    await client.close();
  });

  it('returns a typed not-found for an unknown reference', async () => {
    const f = await anonymous({});
    const { client, errorLines } = setup(f.url);
    await expect(client.getManifest('acme/app', 'nope')).resolves.toEqual({
      found: false,
      code: 'MANIFEST_UNKNOWN',
    });
    expect(errorLines()).toEqual([]);
    await client.close();
  });

  it('rejects bytes that do not match the requested digest', async () => {
    const other = sha256('other');
    const f = await anonymous({ [`/v2/acme/app/manifests/${other}`]: serveManifest(MANIFEST) });
    const { client, failures, errorLines } = setup(f.url);
    const err = (await client.getManifest('acme/app', other).catch((e: unknown) => e)) as UpstreamError;
    expect(err.reason).toBe('digest_mismatch');
    expect(err.toOciError().status).toBe(502);
    expect(await failures('digest_mismatch')).toBe(1);
    expect(errorLines()[0].msg).toBe(
      `The upstream served acme/app manifest ${other} as ${MANIFEST_DIGEST}: the bytes were refused and not cached. Fix: check the upstream's storage for corruption, or a proxy that rewrites answers.`,
    );
    await client.close();
  });

  it('rejects a tag whose bytes do not match Docker-Content-Digest', async () => {
    const f = await anonymous({ '/v2/acme/app/manifests/v1': serveManifest(MANIFEST, sha256('x')) });
    const { client } = setup(f.url);
    await expect(client.getManifest('acme/app', 'v1')).rejects.toMatchObject({ reason: 'digest_mismatch' });
    await client.close();
  });

  it('retries a 5xx and succeeds', async () => {
    let calls = 0;
    const f = await anonymous({
      '/v2/acme/app/manifests/v1': (req, res) => {
        if (++calls === 1) return void res.writeHead(503).end();
        serveManifest(MANIFEST, MANIFEST_DIGEST)(req, res);
      },
    });
    const { client, errorLines } = setup(f.url);
    await expect(client.getManifest('acme/app', 'v1')).resolves.toMatchObject({ found: true });
    expect(calls).toBe(2);
    expect(errorLines()).toEqual([]);
    await client.close();
  });

  it('gives up after the configured retries with server_error', async () => {
    let calls = 0;
    const f = await anonymous({
      '/v2/acme/app/manifests/v1': (_req, res) => {
        calls++;
        res.writeHead(500).end();
      },
    });
    const { client, failures } = setup(f.url, { retries: 2 });
    await expect(client.getManifest('acme/app', 'v1')).rejects.toMatchObject({
      reason: 'server_error',
      upstreamStatus: 500,
    });
    expect(calls).toBe(3);
    expect(await failures('server_error')).toBe(1);
    await client.close();
  });

  it('classifies a refused connection as unreachable (503 for the member) after retrying', async () => {
    const f = await fake(() => undefined);
    const url = f.url;
    await f.close();
    const { client, errorLines } = setup(url, { retries: 1 });
    const err = (await client.getManifest('acme/app', 'v1').catch((e: unknown) => e)) as UpstreamError;
    expect(err.reason).toBe('unreachable');
    expect(err.toOciError().code).toBe('UNAVAILABLE');
    expect(errorLines()[0].msg).toBe(
      `Cannot connect to the upstream registry at FORGEJO_BASE_URL=${url} (ECONNREFUSED): it is down, restarting or the address is wrong. Fix: start the upstream, or correct FORGEJO_BASE_URL.`,
    );
    await client.close();
  });

  it('times out waiting for headers', async () => {
    const f = await fake((req, res) => {
      if (req.url === '/v2/') return void res.writeHead(200).end();
      // never answers
    });
    const { client } = setup(f.url, { headersTimeoutMs: 200 });
    await expect(client.getManifest('acme/app', 'v1')).rejects.toMatchObject({ reason: 'timeout' });
    await client.close();
  });

  it('answers not_configured without any request when the upstream is not configured', async () => {
    const { client, errorLines } = setup('http://127.0.0.1:9', {
      enabled: false,
      token: null,
      missing: ['FORGEJO_API_TOKEN'],
    });
    const err = (await client.getManifest('acme/app', 'v1').catch((e: unknown) => e)) as UpstreamError;
    expect(err.reason).toBe('not_configured');
    expect(err.toOciError().status).toBe(503);
    expect(errorLines()[0].msg).toContain('FORGEJO_API_TOKEN not set');
    await client.close();
  });
});
