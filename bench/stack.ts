import { ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { request } from 'undici';
import { PostgresCluster } from '@gatehouse/database';
// eslint-disable-next-line no-restricted-imports
import { getFreePort, RegistryProcess, runCommand, startRegistry } from '../libs/testing/src/upstream';
// eslint-disable-next-line no-restricted-imports
import { waitForExit } from '../libs/testing/src/upstream/process-registry';
import { BENCH_DIR, REPO_ROOT } from './paths';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Every process the bench starts is stopped by `stopAll`, and killed if the bench dies. */
const cleanups: Array<() => Promise<void>> = [];
const children = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

/** Registers a cleanup `stopAll` runs (processes the figures start themselves). */
export function onStop(cleanup: () => Promise<void>): void {
  cleanups.push(cleanup);
}

export async function stopAll(): Promise<void> {
  while (cleanups.length > 0) await cleanups.pop()!().catch(() => undefined);
}

async function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill(signal);
  if (!(await waitForExit(child, 30_000))) {
    child.kill('SIGKILL');
    await waitForExit(child, 5_000);
  }
}

function spawnLogged(
  command: string,
  args: string[],
  logFile: string,
  env?: NodeJS.ProcessEnv,
): ChildProcess {
  const fd = openSync(logFile, 'a');
  try {
    const child = spawn(command, args, {
      cwd: REPO_ROOT,
      env: env ?? process.env,
      stdio: ['ignore', fd, fd],
    });
    children.add(child);
    child.once('exit', () => children.delete(child));
    return child;
  } finally {
    closeSync(fd);
  }
}

// ------------------------------------------------------------------ PostgreSQL

export interface BenchPostgres {
  url: string;
  adminUrl: string;
}

/**
 * One PostgreSQL server for the run, with the embedded server's default settings (durable
 * commits: the audit writer pays what it pays in production).
 */
export async function startPostgres(): Promise<BenchPostgres> {
  const root = mkdtempSync(join(tmpdir(), 'gatehouse-bench-pg-'));
  // As root the server runs as the `postgres` user, which must be able to enter the directory.
  chmodSync(root, 0o755);
  const cluster = new PostgresCluster({
    dataDir: join(root, 'pgdata'),
    password: randomBytes(12).toString('hex'),
  });
  cleanups.push(async () => {
    await cluster.stop();
    rmSync(root, { recursive: true, force: true });
  });
  await cluster.initialise();
  await cluster.start();
  const { Client } = await import('pg');
  const admin = new Client({ connectionString: cluster.url('postgres') });
  await admin.connect();
  await admin.query('CREATE DATABASE gatehouse');
  await admin.end();
  return { url: cluster.url('gatehouse'), adminUrl: cluster.url('postgres') };
}

// ------------------------------------------------------------------ registries

export interface BenchRegistries {
  /** The gateway's upstream: htpasswd Basic, as an upstream needing a service credential. */
  upstream: RegistryProcess;
  /** The same storage without authentication: the strictest reference for direct serving. */
  open: RegistryProcess;
}

export async function startRegistries(storageDir: string): Promise<BenchRegistries> {
  const credentials = { username: 'gatehouse-service', password: randomBytes(20).toString('hex') };
  const upstream = await startRegistry({ copyFrom: storageDir, htpasswd: credentials });
  cleanups.push(() => upstream.stop());
  const open = await startRegistry({ copyFrom: storageDir });
  cleanups.push(() => open.stop());
  return { upstream, open };
}

// ------------------------------------------------------------------ nginx

export interface BenchNginx {
  url: string;
}

/** nginx (Debian) serving one file statically, in the foreground, with a private config. */
export async function startNginx(file: string): Promise<BenchNginx> {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-bench-nginx-'));
  const port = await getFreePort();
  const conf = join(dir, 'nginx.conf');
  const temp = (name: string): string => join(dir, name);
  // Debian's stock tuning (sendfile, tcp_nopush, auto workers), without the access log.
  writeFileSync(
    conf,
    `daemon off;
user root;
worker_processes auto;
pid ${temp('nginx.pid')};
error_log ${temp('error.log')} warn;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 100000;
  default_type application/octet-stream;
  client_body_temp_path ${temp('body')};
  proxy_temp_path ${temp('proxy')};
  fastcgi_temp_path ${temp('fastcgi')};
  uwsgi_temp_path ${temp('uwsgi')};
  scgi_temp_path ${temp('scgi')};
  server {
    listen 127.0.0.1:${port};
    root ${dirname(file)};
  }
}
`,
  );
  const child = spawnLogged('nginx', ['-c', conf, '-e', temp('error.log')], temp('stdout.log'));
  cleanups.push(async () => {
    await stopChild(child, 'SIGQUIT');
    rmSync(dir, { recursive: true, force: true });
  });
  const url = `http://127.0.0.1:${port}`;
  await waitFor(`${url}/`, (s) => s > 0, child, 10_000, temp('error.log'));
  return { url };
}

/** bench/passthrough.ts in front of `upstreamUrl`: the floor row of the cold figures. */
export function startPassThrough(upstreamUrl: string, logFile: string): Promise<{ url: string }> {
  return startBenchServer('passthrough.ts', upstreamUrl, logFile);
}

/** The same pass-through with its pid (figure 12 reads its CPU) and a stop. */
export async function startPassThroughProcess(
  upstreamUrl: string,
  logFile: string,
): Promise<{ url: string; pid: number; stop: () => Promise<void> }> {
  const { url, child } = await startBenchServerChild('passthrough.ts', upstreamUrl, logFile);
  return { url, pid: child.pid!, stop: () => stopChild(child) };
}

/** bench/plain-file-server.ts serving `file`: the comparison row of the cached-blob figure. */
export function startPlainFileServer(file: string, logFile: string): Promise<{ url: string }> {
  return startBenchServer('plain-file-server.ts', file, logFile);
}

/** bench/webhook-receiver.ts: figure 11's receiver, in a process of its own. */
export async function startWebhookReceiverProcess(
  logFile: string,
): Promise<{ url: string; pid: number; stop: () => Promise<void> }> {
  const { url, child } = await startBenchServerChild('webhook-receiver.ts', '-', logFile);
  return { url, pid: child.pid!, stop: () => stopChild(child) };
}

async function startBenchServer(script: string, argument: string, logFile: string): Promise<{ url: string }> {
  return { url: (await startBenchServerChild(script, argument, logFile)).url };
}

async function startBenchServerChild(
  script: string,
  argument: string,
  logFile: string,
): Promise<{ url: string; child: ChildProcess }> {
  const port = await getFreePort();
  const child = spawnLogged(
    process.execPath,
    ['-r', '@swc-node/register', join(REPO_ROOT, 'bench', script), argument, String(port)],
    logFile,
  );
  cleanups.push(() => stopChild(child));
  const url = `http://127.0.0.1:${port}`;
  await waitFor(`${url}/`, (s) => s > 0, child, 20_000, logFile);
  return { url, child };
}

async function waitFor(
  url: string,
  ok: (status: number) => boolean,
  child: ChildProcess,
  timeoutMs: number,
  logFile: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null)
      throw new Error(`process exited during start; see ${logFile}`);
    try {
      const res = await request(url, { headersTimeout: 2000, bodyTimeout: 2000 });
      await res.body.dump();
      if (ok(res.statusCode)) return;
      last = String(res.statusCode);
    } catch (e) {
      last = (e as Error).message;
    }
    await sleep(100);
  }
  throw new Error(`${url} not ready within ${timeoutMs} ms (last: ${last}); see ${logFile}`);
}

// ------------------------------------------------------------------ the built gateway

/** The built gateway and CLI are copied here, so a rebuild elsewhere cannot change a running bench. */
export const BUILD_SNAPSHOT = join(BENCH_DIR, 'dist');

export function snapshotBuild(): void {
  const dist = join(REPO_ROOT, 'dist');
  if (!existsSync(join(dist, 'apps/gateway/src/main.js')))
    throw new Error('dist/ is missing: run npm run build');
  rmSync(BUILD_SNAPSHOT, { recursive: true, force: true });
  cpSync(dist, BUILD_SNAPSHOT, { recursive: true });
}

export interface GatewayOptions {
  postgresUrl: string;
  upstream: RegistryProcess;
  dataDir: string;
  cacheDir: string;
  logFile: string;
  /** Extra node flags, e.g. --cpu-prof. */
  nodeArgs?: string[];
  /** Extra or overriding settings (replicas: REDIS_URL, the balancer's service, shared secrets). */
  env?: NodeJS.ProcessEnv;
}

export interface BenchGateway {
  url: string;
  service: string;
  pid: number;
  env: NodeJS.ProcessEnv;
  stop(): Promise<void>;
}

/** The environment of the built gateway and the CLI: only the bench's own settings. */
export function gatewayEnvironment(o: Omit<GatewayOptions, 'logFile'>, port: number): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const name of ['PATH', 'HOME', 'LANG', 'TZ']) if (process.env[name]) env[name] = process.env[name];
  const service = `127.0.0.1:${port}`;
  return {
    ...env,
    NODE_ENV: 'production',
    PORT: String(port),
    HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
    DATA_DIR: o.dataDir,
    DATABASE_URL: o.postgresUrl,
    FORGEJO_BASE_URL: o.upstream.url,
    FORGEJO_API_USERNAME: o.upstream.credentials!.username,
    FORGEJO_API_TOKEN: o.upstream.credentials!.password,
    OCI_REGISTRY_SERVICE: service,
    OCI_REGISTRY_REALM: `http://${service}/auth/token`,
    OCI_CACHE_DIR: o.cacheDir,
    // The limiter still runs on every request; the bench's single member must not be refused.
    // Default window: the limiter's storage is O(1) per request whatever the limit.
    RATE_LIMIT_V2_PER_MEMBER: '1000000000',
    RATE_LIMIT_TOKEN_PER_IP: '1000000000',
    RATE_LIMIT_ANONYMOUS_PER_IP: '1000000000',
    // Figure 11's webhook receiver listens on loopback.
    EVENTS_ALLOW_PRIVATE_TARGETS: 'true',
    ...o.env,
  };
}

export async function startGateway(o: GatewayOptions): Promise<BenchGateway> {
  mkdirSync(o.dataDir, { recursive: true });
  mkdirSync(o.cacheDir, { recursive: true });
  const port = await getFreePort();
  const env = gatewayEnvironment(o, port);
  const main = join(BUILD_SNAPSHOT, 'apps/gateway/src/main.js');
  const child = spawnLogged(process.execPath, [...(o.nodeArgs ?? []), main], o.logFile, env);
  const url = `http://127.0.0.1:${port}`;
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    await stopChild(child);
  };
  cleanups.push(stop);
  await waitFor(`${url}/readyz`, (s) => s === 200, child, 120_000, o.logFile);
  return { url, service: `127.0.0.1:${port}`, pid: child.pid!, env, stop };
}

/** Runs the built CLI with the gateway's environment. */
export async function cli(env: NodeJS.ProcessEnv, args: string[]): Promise<string> {
  const result = await runCommand(process.execPath, [join(BUILD_SNAPSHOT, 'apps/cli/src/main.js'), ...args], {
    env,
    timeoutMs: 120_000,
  });
  if (result.code !== 0) {
    throw new Error(
      `gatehouse ${args.join(' ')} exited with ${result.code}: ${(result.stderr || result.stdout).trim()}`,
    );
  }
  return result.stdout;
}

export interface BenchMember {
  username: string;
  key: string;
}

export async function enrolMember(env: NodeJS.ProcessEnv, repositories: string[]): Promise<BenchMember> {
  const username = 'bench';
  await cli(env, ['member', 'create', username]);
  const created = JSON.parse(await cli(env, ['key', 'create', username, '--format', 'json'])) as Record<
    string,
    unknown
  >;
  const key = ['secret', 'key', 'accessKey', 'access_key']
    .map((f) => created[f])
    .find((v) => typeof v === 'string');
  if (typeof key !== 'string') throw new Error('gatehouse key create --format json printed no secret');
  for (const repository of repositories) await cli(env, ['grant', username, repository, '--tags', '*']);
  return { username, key };
}

export function basic(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
}

/** A pull token for `repositories`, as a client gets it from the token endpoint. */
export async function fetchToken(
  gateway: BenchGateway,
  member: BenchMember,
  repositories: string[],
): Promise<string> {
  const query = new URLSearchParams({ service: gateway.service });
  for (const r of repositories) query.append('scope', `repository:${r}:pull`);
  const res = await request(`${gateway.url}/auth/token?${query}`, {
    headers: { authorization: basic(member.username, member.key) },
  });
  const body = (await res.body.json()) as { token?: string };
  if (res.statusCode !== 200 || !body.token) throw new Error(`token endpoint answered ${res.statusCode}`);
  return body.token;
}

export function freshDir(...parts: string[]): string {
  const dir = join(BENCH_DIR, ...parts);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  return dir;
}
