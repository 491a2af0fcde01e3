import { ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join, resolve } from 'node:path';
import { getFreePort } from '../upstream/ports';
import { trackChild, waitForExit } from '../upstream/process-registry';
import { makeTempDir, TempDir } from '../upstream/tmp';

const NGINX = '/usr/sbin/nginx';
const SHIPPED_CONF = join(resolve(__dirname, '../../../..'), 'docker/nginx.conf');

export interface TestNginx {
  port: number;
  url: string;
  /** The configuration it runs (the shipped docker/nginx.conf with loopback addresses). */
  conf: string;
  stop(): Promise<void>;
}

/**
 * Debian's nginx running the repository's docker/nginx.conf, with the compose service names
 * replaced by the given loopback ports: a non-daemon child with its own prefix, pid, logs and
 * temp directories under a temp dir, on a free port. Fails with one line when nginx is missing.
 */
export interface TestNginxOffload {
  /** The workers' user: the one the gateways run as (their cache files are 0600). */
  user: string;
  /** Each gateway's OCI_CACHE_DIR, in the order of `upstreams`. */
  cacheDirs: string[];
}

export async function startTestNginx(options: {
  upstreams: number[];
  port?: number;
  /** Enable the shipped blob-offload locations (the `#offload ` lines of docker/nginx.conf). */
  offload?: TestNginxOffload;
}): Promise<TestNginx> {
  if (!existsSync(NGINX)) throw new Error(`${NGINX} not found: install Debian package nginx`);
  const port = options.port ?? (await getFreePort());
  const work: TempDir = await makeTempDir('nginx');
  for (const d of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) await mkdir(join(work.path, d));
  let conf = loopbackConf(readFileSync(SHIPPED_CONF, 'utf8'), port, options.upstreams, work.path);
  if (options.offload) conf = offloadConf(conf, options.offload);
  const confFile = join(work.path, 'nginx.conf');
  await writeFile(confFile, conf);
  const errorLog = join(work.path, 'error.log');
  const child: ChildProcess = spawn(
    NGINX,
    [
      '-p',
      work.path,
      '-c',
      confFile,
      '-e',
      errorLog,
      '-g',
      `daemon off; pid ${join(work.path, 'nginx.pid')};`,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += String(d)));
  trackChild(child);
  await waitListening(
    port,
    child,
    () => stderr || (existsSync(errorLog) ? readFileSync(errorLog, 'utf8') : ''),
  );
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    conf,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGQUIT');
        if (!(await waitForExit(child, 5_000))) child.kill('SIGKILL');
      }
      await work.cleanup();
    },
  };
}

/** The shipped configuration on loopback: one worker, own temp paths, the given ports. */
export function loopbackConf(shipped: string, port: number, upstreams: number[], dir: string): string {
  // Every upstream block names the same gateways (gateway, gateway-2): one port per name.
  const names = [...new Set([...shipped.matchAll(/^\s*server ([a-z0-9-]+):8080/gm)].map((m) => m[1]))];
  if (names.length !== upstreams.length)
    throw new Error(`docker/nginx.conf names ${names.length} gateways, the test starts ${upstreams.length}`);
  let out = shipped.replace(/^worker_processes .*;$/m, 'worker_processes 1;');
  names.forEach(
    (name, i) => (out = out.replaceAll(`server ${name}:8080`, `server 127.0.0.1:${upstreams[i]}`)),
  );
  out = out.replace(/listen 8080;/, `listen 127.0.0.1:${port};`);
  const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']
    .map((k) => `  ${k}_temp_path ${join(dir, k === 'client_body' ? 'body' : k)};`)
    .join('\n');
  return out.replace(/^http \{$/m, `http {\n${temp}`);
}

/**
 * The shipped offload lines enabled, as the operator is told to: the `#offload ` prefixes
 * removed, the workers' user set, each gateway's alias pointed at its cache directory.
 */
export function offloadConf(conf: string, offload: TestNginxOffload): string {
  let out = conf.replace(/^(\s*)#offload /gm, '$1');
  out = out.replace(/^user .*;$/m, `user ${offload.user};`);
  const aliases = [...out.matchAll(/alias (\/var\/cache\/gatehouse\/[a-z0-9-]+\/);/g)].map((m) => m[1]);
  if (aliases.length !== offload.cacheDirs.length)
    throw new Error(
      `docker/nginx.conf has ${aliases.length} offload aliases, the test gives ${offload.cacheDirs.length}`,
    );
  aliases.forEach(
    (alias, i) =>
      (out = out.replace(`alias ${alias};`, `alias ${offload.cacheDirs[i].replace(/\/?$/, '/')};`)),
  );
  return out;
}

async function waitListening(port: number, child: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`nginx exited (${child.exitCode}): ${output().trim()}`);
    const ok = await new Promise<boolean>((r) => {
      const s = connect(port, '127.0.0.1', () => {
        s.end();
        r(true);
      });
      s.on('error', () => r(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nginx did not listen on port ${port} within 10 s: ${output().trim()}`);
}
