import { Writable } from 'node:stream';
import { createHash } from 'node:crypto';
import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import { AddressInfo } from 'node:net';
import { pipeline } from 'node:stream/promises';
import type { UpstreamConfig } from '@gatehouse/config';
import { Clock, createCapturingLogger, MetricsService } from '@gatehouse/observability';
import { UpstreamError } from './upstream.error';
import { UpstreamHealth } from './upstream-health.service';
import { UpstreamRegistryClient } from './upstream-registry.client';
import { UpstreamBlob } from './upstream.types';

// Local HTTP fakes for edge cases the real test upstream cannot produce on demand
// (exact expiry instants, a 5xx followed by a 200, a body cut at a chosen byte).

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

interface Fake {
  url: string;
  hits: Array<{ method: string; path: string; authorization?: string; range?: string }>;
  close(): Promise<void>;
}

const servers: Server[] = [];

async function fake(handler: Handler): Promise<Fake> {
  const hits: Fake['hits'] = [];
  const server = createServer((req, res) => {
    hits.push({
      method: req.method!,
      path: req.url!,
      authorization: req.headers.authorization,
      range: req.headers.range,
    });
    handler(req, res);
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    hits,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

afterEach(async () => {
  await Promise.all(
    servers.splice(0).map(
      (s) =>
        new Promise<void>((r) => {
          s.closeAllConnections();
          s.close(() => r());
        }),
    ),
  );
});

class FakeClock extends Clock {
  t = 1_700_000_000_000;
  override now(): number {
    return this.t;
  }
}

const PAT = 'f'.repeat(40);

function config(baseUrl: string, over: Partial<UpstreamConfig> = {}): UpstreamConfig {
  return {
    enabled: true,
    baseUrl,
    token: PAT,
    username: '',
    connectTimeoutMs: 2000,
    headersTimeoutMs: 2000,
    bodyTimeoutMs: 2000,
    manifestDeadlineMs: 60_000,
    maxConnections: 4,
    retries: 2,
    missing: [],
    ...over,
  };
}

const capture = () => createCapturingLogger('debug');

function setup(baseUrl: string, over: Partial<UpstreamConfig> = {}) {
  const log = capture();
  const metrics = new MetricsService();
  const clock = new FakeClock();
  const client = new UpstreamRegistryClient(config(baseUrl, over), log.logger, metrics, clock, {
    retryBaseDelayMs: 1,
  });
  const failures = async (reason: string): Promise<number> => {
    const m = await metrics.registry.getSingleMetric('gatehouse_upstream_failures_total')!.get();
    return m.values.find((v) => v.labels.reason === reason)?.value ?? 0;
  };
  const errorLines = () => log.lines().filter((l) => l.level === 'error');
  return { client, log, metrics, clock, failures, errorLines };
}

function jwt(exp: number, n: number): string {
  const enc = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${enc({ alg: 'HS256' })}.${enc({ exp, n })}.sig`;
}

const sha256 = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const MANIFEST = Buffer.from(
  JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256('c'), size: 1 },
    layers: [],
  }),
);
const MANIFEST_DIGEST = sha256(MANIFEST);
const BLOB = Buffer.alloc(256 * 1024, 7);
const BLOB_DIGEST = sha256(BLOB);

async function drain(blob: UpstreamBlob): Promise<Buffer> {
  const chunks: Buffer[] = [];
  await pipeline(
    blob.body,
    new Writable({
      write(c, _e, cb) {
        chunks.push(c as Buffer);
        cb();
      },
    }),
  );
  return Buffer.concat(chunks);
}

/**
 * A Forgejo-like registry: Bearer challenge with scope="*", a token endpoint answering
 * {"token"} only, 401 authGroup.Verify for a JWT it does not (or no longer) accept.
 */
async function forgejoLike(opts: { jwtExp: () => number; tokenOk?: () => boolean } = { jwtExp: () => 0 }) {
  let minted = 0;
  const accepted = new Set<string>();
  const state = {
    revokeAllJwts: () => accepted.clear(),
    minted: () => minted,
    routes: new Map<string, Handler>(),
  };
  const f = await fake((req, res) => {
    const path = req.url!.split('?')[0];
    if (path === '/v2/token') {
      const ok = req.headers.authorization === `Basic ${Buffer.from(`:${PAT}`).toString('base64')}`;
      if (!ok || (opts.tokenOk && !opts.tokenOk())) {
        res.writeHead(401, { 'content-type': 'text/plain; charset=utf-8' }).end('authGroup.Verify\n');
        return;
      }
      const token = jwt(opts.jwtExp(), ++minted);
      accepted.add(token);
      res.writeHead(200, { 'content-type': 'application/json;charset=utf-8' }).end(JSON.stringify({ token }));
      return;
    }
    const auth = req.headers.authorization;
    if (!auth) {
      res
        .writeHead(401, {
          'www-authenticate': `Bearer realm="${f.url}/v2/token",service="container_registry",scope="*"`,
          'content-type': 'application/json',
        })
        .end('{"errors":[{"code":"UNAUTHORIZED","message":""}]}\n');
      return;
    }
    if (!auth.startsWith('Bearer ') || !accepted.has(auth.slice(7))) {
      res.writeHead(401, { 'content-type': 'text/plain; charset=utf-8' }).end('authGroup.Verify\n');
      return;
    }
    const route = state.routes.get(path);
    if (route) return route(req, res);
    if (path === '/v2' || path === '/v2/') return void res.writeHead(200, { 'content-length': '0' }).end();
    res
      .writeHead(404, { 'content-type': 'application/json' })
      .end('{"errors":[{"code":"MANIFEST_UNKNOWN","message":""}]}\n');
  });
  return { ...state, f };
}

function serveManifest(body: Buffer, digestHeader?: string): Handler {
  return (req, res) => {
    const headers: Record<string, string> = {
      'content-type': 'application/vnd.oci.image.manifest.v1+json',
      'content-length': String(body.length),
    };
    if (digestHeader) headers['docker-content-digest'] = digestHeader;
    res.writeHead(200, headers);
    res.end(req.method === 'HEAD' ? undefined : body);
  };
}

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

describe('UpstreamRegistryClient: Basic registries', () => {
  it('sends Basic credentials to the registry and classifies a refusal', async () => {
    const good = `Basic ${Buffer.from(`svc:${PAT}`).toString('base64')}`;
    const f = await fake((req, res) => {
      if (req.headers.authorization !== good) {
        res
          .writeHead(401, { 'www-authenticate': 'Basic realm="test"', 'content-type': 'application/json' })
          .end('{"errors":[{"code":"UNAUTHORIZED"}]}');
        return;
      }
      if (req.url === '/v2/') return void res.writeHead(200).end('{}');
      serveManifest(MANIFEST)(req, res);
    });
    const ok = setup(f.url, { username: 'svc' });
    await expect(ok.client.getManifest('acme/app', MANIFEST_DIGEST)).resolves.toMatchObject({
      found: true,
      digest: MANIFEST_DIGEST,
    });
    await ok.client.close();

    const bad = setup(f.url, { username: 'other' });
    const err = (await bad.client.getManifest('acme/app', 'v1').catch((e: unknown) => e)) as UpstreamError;
    expect(err.reason).toBe('token_invalid');
    expect(bad.errorLines()[0].msg).toBe(
      'The upstream registry at FORGEJO_BASE_URL rejected the service credentials (401 Basic realm="test"): FORGEJO_API_USERNAME / FORGEJO_API_TOKEN are wrong or revoked. Fix: set FORGEJO_API_USERNAME and FORGEJO_API_TOKEN to a user and password (or token) that the registry accepts.',
    );
    expect(bad.log.raw()).not.toContain(PAT);
    expect(bad.log.raw()).not.toContain(Buffer.from(`other:${PAT}`).toString('base64'));
    await bad.client.close();
  });
});

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

describe('UpstreamRegistryClient: blobs', () => {
  it('follows a 307 to another origin without Authorization and passes Range through', async () => {
    const storage = await fake((req, res) => {
      if (req.headers.authorization) {
        res
          .writeHead(400, { 'content-type': 'application/xml' })
          .end('<Error><Code>InvalidArgument</Code></Error>');
        return;
      }
      const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
      if (m) {
        const [a, b] = [Number(m[1]), Number(m[2])];
        res.writeHead(206, {
          'content-length': String(b - a + 1),
          'content-range': `bytes ${a}-${b}/${BLOB.length}`,
        });
        res.end(BLOB.subarray(a, b + 1));
        return;
      }
      res.writeHead(200, { 'content-length': String(BLOB.length) }).end(BLOB);
    });
    const up = await forgejoLike({ jwtExp: () => Date.now() / 1000 + 3600 });
    up.routes.set(`/v2/acme/app/blobs/${BLOB_DIGEST}`, (_req, res) => {
      res
        .writeHead(307, {
          location: `${storage.url}/bucket/obj?X-Amz-Signature=secret`,
          'content-type': 'text/html; charset=utf-8',
        })
        .end();
    });
    const { client, log } = setup(up.f.url);

    const full = (await client.getBlob('acme/app', BLOB_DIGEST)) as UpstreamBlob;
    expect(full).toMatchObject({ found: true, status: 200, size: BLOB.length });
    expect((await drain(full)).equals(BLOB)).toBe(true);

    const part = (await client.getBlob('acme/app', BLOB_DIGEST, { range: 'bytes=10-19' })) as UpstreamBlob;
    expect(part).toMatchObject({ status: 206, size: 10, contentRange: `bytes 10-19/${BLOB.length}` });
    expect((await drain(part)).equals(BLOB.subarray(10, 20))).toBe(true);

    expect(storage.hits.every((h) => h.authorization === undefined)).toBe(true);
    expect(storage.hits.map((h) => h.range)).toEqual([undefined, 'bytes=10-19']);
    expect(
      up.f.hits
        .filter((h) => h.path.includes('/blobs/'))
        .every((h) => h.authorization?.startsWith('Bearer ')),
    ).toBe(true);
    expect(log.raw()).not.toContain('X-Amz-Signature');
    await client.close();
  });

  function blobServer(send: (res: ServerResponse) => void) {
    return fake((req, res) => {
      if (req.url === '/v2/') return void res.writeHead(200).end();
      send(res);
    });
  }

  it('errors (never ends) when the upstream cuts the body', async () => {
    const f = await blobServer((res) => {
      res.writeHead(200, { 'content-length': String(BLOB.length) });
      res.write(BLOB.subarray(0, 1000), () => res.socket?.destroy());
    });
    const { client, failures, errorLines } = setup(f.url);
    const blob = (await client.getBlob('acme/app', BLOB_DIGEST)) as UpstreamBlob;
    const err = (await drain(blob).catch((e: unknown) => e)) as UpstreamError;
    expect(err).toBeInstanceOf(UpstreamError);
    expect(err.reason).toBe('truncated');
    expect(await failures('truncated')).toBe(1);
    expect(errorLines()[0].msg).toMatch(
      /^The upstream body of acme\/app blob sha256:[0-9a-f]{64} ended after 1000 of 262144 bytes \(/,
    );
    expect(errorLines()[0].cause).toBeDefined();
    await client.close();
  });

  it('errors when the body is complete but shorter than the expected size', async () => {
    const f = await blobServer((res) =>
      res.writeHead(200, { 'content-length': '10' }).end(BLOB.subarray(0, 10)),
    );
    const { client } = setup(f.url);
    await expect(
      client.getBlob('acme/app', BLOB_DIGEST, { expectedSize: BLOB.length }),
    ).rejects.toMatchObject({ reason: 'digest_mismatch' });
    const blob = (await client.getBlob('acme/app', BLOB_DIGEST)) as UpstreamBlob;
    await expect(drain(blob)).rejects.toMatchObject({ reason: 'digest_mismatch' });
    await client.close();
  });

  it('rejects a body with the wrong digest at its end', async () => {
    const wrong = Buffer.alloc(BLOB.length, 8);
    const f = await blobServer((res) =>
      res.writeHead(200, { 'content-length': String(wrong.length) }).end(wrong),
    );
    const { client, failures } = setup(f.url);
    const blob = (await client.getBlob('acme/app', BLOB_DIGEST)) as UpstreamBlob;
    await expect(drain(blob)).rejects.toMatchObject({ reason: 'digest_mismatch' });
    expect(await failures('digest_mismatch')).toBe(1);
    await client.close();
  });

  it('leaves the digest to a caller that hashes the body itself, and still checks the length', async () => {
    const wrong = Buffer.alloc(BLOB.length, 8);
    const f = await blobServer((res) =>
      res.writeHead(200, { 'content-length': String(wrong.length) }).end(wrong),
    );
    const { client } = setup(f.url);
    const blob = (await client.getBlob('acme/app', BLOB_DIGEST, { verifyDigest: false })) as UpstreamBlob;
    expect((await drain(blob)).equals(wrong)).toBe(true);
    await client.close();

    const cut = await blobServer((res) => {
      res.writeHead(200, { 'content-length': String(BLOB.length) });
      res.write(BLOB.subarray(0, 1000), () => res.socket?.destroy());
    });
    const second = setup(cut.url);
    const partial = (await second.client.getBlob('acme/app', BLOB_DIGEST, {
      verifyDigest: false,
    })) as UpstreamBlob;
    await expect(drain(partial)).rejects.toBeInstanceOf(Error);
    await second.client.close();
  });

  it('fails a stalled body with the idle body timeout', async () => {
    const f = await blobServer((res) => {
      res.writeHead(200, { 'content-length': String(BLOB.length) });
      res.write(BLOB.subarray(0, 100));
    });
    const { client } = setup(f.url, { bodyTimeoutMs: 300 });
    const blob = (await client.getBlob('acme/app', BLOB_DIGEST)) as UpstreamBlob;
    await expect(drain(blob)).rejects.toMatchObject({ reason: 'timeout' });
    await client.close();
  });

  it('releases the upstream connection when the consumer stops reading', async () => {
    let closed = false;
    const f = await blobServer((res) => {
      res.writeHead(200, { 'content-length': String(BLOB.length) });
      res.write(BLOB.subarray(0, 100));
      res.on('close', () => (closed = true));
    });
    const { client, errorLines } = setup(f.url);
    const blob = (await client.getBlob('acme/app', BLOB_DIGEST)) as UpstreamBlob;
    blob.body.destroy();
    for (let i = 0; i < 100 && !closed; i++) await new Promise((r) => setTimeout(r, 10));
    expect(closed).toBe(true);
    expect(errorLines()).toEqual([]);
    await client.close();
  });
});

describe('UpstreamRegistryClient: tags', () => {
  it("follows Link and stops on Forgejo's extra empty page", async () => {
    const all = ['a', 'b', 'c', 'd', 'e'];
    const f = await fake((req, res) => {
      const u = new URL(req.url!, 'http://x');
      if (u.pathname === '/v2/') return void res.writeHead(200).end();
      const n = Number(u.searchParams.get('n') ?? '100');
      const last = u.searchParams.get('last');
      const tags = all.filter((t) => !last || t > last).slice(0, n);
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (tags.length > 0)
        headers.link = `</v2/acme/app/tags/list?last=${tags[tags.length - 1]}&n=${n}>; rel="next"`;
      res.writeHead(200, headers).end(JSON.stringify({ name: 'acme/app', tags }));
    });
    const { client } = setup(f.url);
    expect(await client.listAllTags('acme/app', { pageSize: 2 })).toEqual({
      found: true,
      name: 'acme/app',
      tags: all,
    });
    // 3 full pages + the extra empty one.
    expect(f.hits.filter((h) => h.path.includes('tags/list'))).toHaveLength(4);
    expect(await client.listTags('acme/app', { n: 2, last: 'b' })).toEqual({
      found: true,
      name: 'acme/app',
      tags: ['c', 'd'],
      next: { last: 'd', n: 2 },
    });
    await client.close();
  });
});

describe('UpstreamHealth', () => {
  it('caches the access check for its TTL', async () => {
    const up = await forgejoLike({ jwtExp: () => Date.now() / 1000 + 3600 });
    const { client, log, clock } = setup(up.f.url);
    const health = new UpstreamHealth(client, log.logger, clock, { ttlMs: 30_000 });
    expect(await health.check()).toMatchObject({ ok: true });
    await health.check();
    expect(up.minted()).toBe(1);
    clock.t += 31_000;
    await health.check();
    expect(up.minted()).toBe(2);
    await client.close();
  });
});
