import { Writable } from 'node:stream';
import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import { AddressInfo } from 'node:net';
import { pipeline } from 'node:stream/promises';
import type { UpstreamConfig } from '@gatehouse/config';
import { Clock, createCapturingLogger, MetricsService } from '@gatehouse/observability';
import { computeDigest } from '@gatehouse/oci';
import { UpstreamRegistryClient } from '../upstream-registry.client';
import { UpstreamBlob } from '../upstream.types';

// Local HTTP fakes for edge cases the real test upstream cannot produce on demand
// (exact expiry instants, a 5xx followed by a 200, a body cut at a chosen byte).

export type Handler = (req: IncomingMessage, res: ServerResponse) => void;

export interface Fake {
  url: string;
  hits: Array<{ method: string; path: string; authorization?: string; range?: string }>;
  close(): Promise<void>;
}

export const servers: Server[] = [];

export async function fake(handler: Handler): Promise<Fake> {
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

export class FakeClock extends Clock {
  t = 1_700_000_000_000;
  override now(): number {
    return this.t;
  }
}

export const PAT = 'f'.repeat(40);

export function config(baseUrl: string, over: Partial<UpstreamConfig> = {}): UpstreamConfig {
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
    tagsCaseInsensitive: true,
    kind: 'forgejo',
    sendMemberTag: false,
    missing: [],
    ...over,
  };
}

export const capture = () => createCapturingLogger('debug');

export function setup(baseUrl: string, over: Partial<UpstreamConfig> = {}) {
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

export function jwt(exp: number, n: number): string {
  const enc = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${enc({ alg: 'HS256' })}.${enc({ exp, n })}.sig`;
}

export const sha256 = (b: Buffer | string) => computeDigest(b);
export const MANIFEST = Buffer.from(
  JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256('c'), size: 1 },
    layers: [],
  }),
);
export const MANIFEST_DIGEST = sha256(MANIFEST);
export const BLOB = Buffer.alloc(256 * 1024, 7);
export const BLOB_DIGEST = sha256(BLOB);

export async function drain(blob: UpstreamBlob): Promise<Buffer> {
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
export async function forgejoLike(
  opts: { jwtExp: () => number; tokenOk?: () => boolean } = { jwtExp: () => 0 },
) {
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

export function serveManifest(body: Buffer, digestHeader?: string): Handler {
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

/** Closes every fake started by the test (call it in afterEach). */
export async function closeFakes(): Promise<void> {
  await Promise.all(
    servers.splice(0).map(
      (s) =>
        new Promise<void>((r) => {
          s.closeAllConnections();
          s.close(() => r());
        }),
    ),
  );
}
