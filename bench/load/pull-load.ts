import { ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Agent, request } from 'undici';
import { InspectorSession, inspectorUrl } from './inspector-session';

/**
 * Many clients pulling the multi-arch image through the BUILT gateway (a child process, so its
 * descriptors and memory are its own in /proc), each in a loop: token, index, the manifest of one
 * architecture, then its config and layers, every body verified against its digest. Used by
 * `just load` (200 clients, 60 s) and, short, by the integration suite.
 */

export interface PullTarget {
  repository: string;
  tag: string;
  /** Index digest, then per architecture the manifest digest and its blobs. */
  indexDigest: string;
  manifests: Array<{ digest: string; blobs: string[] }>;
}

export interface LoadOptions {
  url: string;
  service: string;
  /** Basic credentials, one per simulated machine group (round robin). */
  credentials: string[];
  target: PullTarget;
  clients: number;
  durationMs: number;
}

export interface LoadResult {
  pulls: number;
  requests: number;
  errors: number;
  /** First few error descriptions, for the report. */
  errorSamples: string[];
  bytes: number;
  pullMs: { p50: number; p95: number; p99: number; max: number };
}

const ACCEPT = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(', ');

export async function runPullLoad(options: LoadOptions): Promise<LoadResult> {
  const dispatcher = new Agent({ connections: options.clients, pipelining: 1, keepAliveTimeout: 4000 });
  const result: LoadResult = {
    pulls: 0,
    requests: 0,
    errors: 0,
    errorSamples: [],
    bytes: 0,
    pullMs: { p50: 0, p95: 0, p99: 0, max: 0 },
  };
  const durations: number[] = [];
  const fail = (what: string) => {
    result.errors++;
    if (result.errorSamples.length < 10) result.errorSamples.push(what);
  };
  const fetchVerified = async (path: string, token: string, digest: string | null, accept?: string) => {
    result.requests++;
    const res = await request(`${options.url}${path}`, {
      dispatcher,
      headers: { authorization: `Bearer ${token}`, ...(accept ? { accept } : {}) },
    });
    const hash = createHash('sha256');
    let n = 0;
    for await (const chunk of res.body) {
      hash.update(chunk as Buffer);
      n += (chunk as Buffer).length;
    }
    result.bytes += n;
    if (res.statusCode !== 200) throw new Error(`${path}: ${res.statusCode}`);
    const got = 'sha256:' + hash.digest('hex');
    if (digest && got !== digest) throw new Error(`${path}: body hashes to ${got}`);
  };
  const deadline = Date.now() + options.durationMs;
  const client = async (i: number) => {
    const basic = options.credentials[i % options.credentials.length];
    const { repository, tag, target } = { ...options.target, target: options.target };
    while (Date.now() < deadline) {
      const started = performance.now();
      try {
        result.requests++;
        const tokenRes = await request(
          `${options.url}/auth/token?service=${encodeURIComponent(options.service)}&scope=repository:${repository}:pull`,
          { dispatcher, headers: { authorization: basic } },
        );
        if (tokenRes.statusCode !== 200) {
          await tokenRes.body.dump();
          throw new Error(`token: ${tokenRes.statusCode}`);
        }
        const { token } = (await tokenRes.body.json()) as { token: string };
        await fetchVerified(`/v2/${repository}/manifests/${tag}`, token, target.indexDigest, ACCEPT);
        const m = target.manifests[i % target.manifests.length];
        await fetchVerified(`/v2/${repository}/manifests/${m.digest}`, token, m.digest, ACCEPT);
        for (const blob of m.blobs) await fetchVerified(`/v2/${repository}/blobs/${blob}`, token, blob);
        result.pulls++;
        durations.push(performance.now() - started);
      } catch (e) {
        fail(`client ${i}: ${(e as Error).message}`);
      }
    }
  };
  await Promise.all(Array.from({ length: options.clients }, (_, i) => client(i)));
  await dispatcher.close();
  durations.sort((a, b) => a - b);
  const at = (q: number) =>
    Math.round(durations[Math.min(durations.length - 1, Math.floor(durations.length * q))] ?? 0);
  result.pullMs = { p50: at(0.5), p95: at(0.95), p99: at(0.99), max: Math.round(durations.at(-1) ?? 0) };
  return result;
}

export interface ProcessFootprint {
  fds: number;
  /** VmRSS from /proc. */
  rssBytes: number;
  /** V8 heap in use; after forced full collections (live objects only) when `collected`. */
  heapUsedBytes: number;
  heapTotalBytes: number;
  /** Memory outside the V8 heap held by JS objects (Buffers), of which `arrayBuffersBytes`. */
  externalBytes: number;
  arrayBuffersBytes: number;
  collected: boolean;
}

export async function descriptors(pid: number): Promise<number> {
  return (await readdir(`/proc/${pid}/fd`)).length;
}

/**
 * Descriptors and memory of the gateway child. With `collect`, garbage is collected first, so
 * the heap figure is the live heap: what a leak would make grow.
 */
export async function footprint(
  pid: number,
  inspector: InspectorSession,
  { collect }: { collect: boolean },
): Promise<ProcessFootprint> {
  if (collect) await inspector.collectGarbage();
  const memory = await inspector.memoryUsage();
  const fds = await descriptors(pid);
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0);
  return {
    fds,
    rssBytes: kb * 1024,
    heapUsedBytes: memory.heapUsed,
    heapTotalBytes: memory.heapTotal,
    externalBytes: memory.external,
    arrayBuffersBytes: memory.arrayBuffers,
    collected: collect,
  };
}

export interface BuiltGateway {
  child: ChildProcess;
  url: string;
  output(): string;
  /** Connected to the child's inspector (started on a free loopback port). */
  inspector: InspectorSession;
  exited: Promise<number | null>;
  stop(): Promise<number | null>;
}

/** The built gateway (dist/), on a clean environment plus `env`, once it answers /healthz. */
export async function startBuiltGateway(env: Record<string, string>, url: string): Promise<BuiltGateway> {
  const main = join(resolve(__dirname, '../..'), 'dist/apps/gateway/src/main.js');
  if (!existsSync(main)) throw new Error(`${main} is missing: run npm run build first`);
  const clean = Object.fromEntries(
    Object.entries(process.env).filter(
      ([k]) => !/^(DATABASE_URL|FORGEJO_|OCI_|PORT$|DATA_DIR$|TRUST_PROXY$)/.test(k),
    ),
  );
  let out = '';
  let err = '';
  // Port 0: the inspector picks a free port and prints it on stderr.
  const child = spawn(process.execPath, ['--inspect=127.0.0.1:0', main], {
    env: { ...clean, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (d) => (out = (out + String(d)).slice(-200_000)));
  child.stderr!.on('data', (d) => {
    out = (out + String(d)).slice(-200_000);
    if (err.length < 10_000) err += String(d);
  });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  let code: number | null | undefined;
  void exited.then((c) => (code = c));
  const until = Date.now() + 60_000;
  for (;;) {
    if (code !== undefined) throw new Error(`the gateway exited with ${code}:\n${out}`);
    const ok = await fetch(`${url}/healthz`).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ok) break;
    if (Date.now() > until) throw new Error(`the gateway did not answer within 60 s:\n${out}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  const inspectorAt = inspectorUrl(err);
  if (!inspectorAt) {
    child.kill('SIGTERM');
    throw new Error(`the gateway printed no inspector URL:\n${out}`);
  }
  let inspector: InspectorSession;
  try {
    inspector = await InspectorSession.connect(inspectorAt);
  } catch (e) {
    child.kill('SIGTERM');
    throw e;
  }
  return {
    child,
    url,
    output: () => out,
    inspector,
    exited,
    async stop() {
      await inspector.close();
      if (child.exitCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}
