import { spawn, ChildProcess } from 'node:child_process';
import { existsSync, openSync, closeSync, readFileSync } from 'node:fs';
import { copyFile, link, mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { request } from 'undici';
import bcrypt from 'bcryptjs';
import { getFreePort } from './ports';
import { makeTempDir, TempDir } from './tmp';
import { trackChild, waitForExit } from './process-registry';

export const DEFAULT_REGISTRY_BINARY = '/usr/bin/docker-registry';

export interface BasicCredentials {
  username: string;
  password: string;
}

export interface StartRegistryOptions {
  /** Serve this directory in place (used to build the seed). */
  storageDir?: string;
  /** Serve a private copy of this seeded storage directory (blob data hard-linked). */
  copyFrom?: string;
  htpasswd?: BasicCredentials;
  port?: number;
  binary?: string;
  /** Address to listen on (default 127.0.0.1); with `netns`, an address of that namespace. */
  host?: string;
  /** Run inside this network namespace (`ip netns exec`), e.g. behind a shaped veth link. */
  netns?: string;
  /** Pull-through cache mode (distribution's `proxy.remoteurl`), with the remote's credentials. */
  proxy?: { remoteUrl: string; username?: string; password?: string };
}

export interface RegistryProcess {
  /** `http://127.0.0.1:<port>` without a trailing slash */
  readonly url: string;
  /** `127.0.0.1:<port>`, the form skopeo and podman want in image references */
  readonly hostPort: string;
  readonly port: number;
  readonly storageDir: string;
  readonly logFile: string;
  readonly credentials?: BasicCredentials;
  /** The registry process's pid (for CPU and memory readings), undefined once stopped. */
  readonly pid: number | undefined;
  isRunning(): boolean;
  /** SIGTERM, wait, then remove the private storage copy and config. */
  stop(): Promise<void>;
  /** SIGKILL without cleanup, for fault tests; `restart()` brings it back on the same port. */
  kill(): Promise<void>;
  restart(): Promise<void>;
}

/**
 * Copies a registry storage tree for one test instance. Blob `data` files are content
 * addressed and never rewritten, so they are hard-linked (fast, no extra disk); every other
 * file (tag and revision links) is copied, because the registry overwrites those in place and
 * a push in one test must not leak into the shared seed.
 */
export async function linkCopyStorage(from: string, to: string): Promise<void> {
  await mkdir(to, { recursive: true });
  const entries = await readdir(from, { withFileTypes: true });
  for (const entry of entries) {
    const src = join(from, entry.name);
    const dst = join(to, entry.name);
    if (entry.isDirectory()) {
      await linkCopyStorage(src, dst);
    } else if (entry.name === 'data' && src.includes(`${join('docker', 'registry', 'v2', 'blobs')}`)) {
      await link(src, dst);
    } else {
      await copyFile(src, dst);
    }
  }
}

function registryConfig(
  storageDir: string,
  address: string,
  htpasswdPath?: string,
  proxy?: StartRegistryOptions['proxy'],
): string {
  const lines = [
    'version: 0.1',
    'log:',
    '  level: info',
    '  formatter: text',
    '  accesslog:',
    '    disabled: false',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${JSON.stringify(storageDir)}`,
    '  delete:',
    '    enabled: false',
    '  redirect:',
    '    disable: true',
    '  maintenance:',
    '    uploadpurging:',
    '      enabled: false',
    'http:',
    `  addr: ${address}`,
    '  secret: gatehouse-test-registry',
    '  headers:',
    '    X-Content-Type-Options: [nosniff]',
    'health:',
    '  storagedriver:',
    '    enabled: false',
  ];
  if (htpasswdPath) {
    lines.push(
      'auth:',
      '  htpasswd:',
      '    realm: gatehouse-test',
      `    path: ${JSON.stringify(htpasswdPath)}`,
    );
  }
  if (proxy) {
    lines.push('proxy:', `  remoteurl: ${JSON.stringify(proxy.remoteUrl)}`);
    if (proxy.username) lines.push(`  username: ${JSON.stringify(proxy.username)}`);
    if (proxy.password) lines.push(`  password: ${JSON.stringify(proxy.password)}`);
  }
  return lines.join('\n') + '\n';
}

function tail(file: string, lines = 20): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

async function waitReady(url: string, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error('registry exited during start');
    try {
      const res = await request(`${url}/v2/`, { method: 'GET', headersTimeout: 1000, bodyTimeout: 1000 });
      await res.body.dump();
      if (res.statusCode === 200 || res.statusCode === 401) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`registry did not answer /v2/ within ${timeoutMs} ms`);
}

export async function startRegistry(options: StartRegistryOptions = {}): Promise<RegistryProcess> {
  const binary = options.binary ?? process.env.GATEHOUSE_REGISTRY_BIN ?? DEFAULT_REGISTRY_BINARY;
  if (!existsSync(binary)) {
    throw new Error(
      `The test upstream needs the CNCF distribution registry at ${binary}, which is missing. ` +
        'Install it with: apt-get install docker-registry',
    );
  }
  const work: TempDir = await makeTempDir('registry');
  let storageDir: string;
  if (options.storageDir) {
    storageDir = options.storageDir;
    await mkdir(storageDir, { recursive: true });
  } else {
    storageDir = join(work.path, 'storage');
    if (options.copyFrom) await linkCopyStorage(options.copyFrom, storageDir);
    else await mkdir(storageDir, { recursive: true });
  }
  let htpasswdPath: string | undefined;
  if (options.htpasswd) {
    htpasswdPath = join(work.path, 'htpasswd');
    const hash = bcrypt.hashSync(options.htpasswd.password, 5);
    await writeFile(htpasswdPath, `${options.htpasswd.username}:${hash}\n`);
  }
  const logFile = join(work.path, 'registry.log');
  const configPath = join(work.path, 'config.yml');

  let port = options.port ?? 0;
  const host = options.host ?? '127.0.0.1';
  let child: ChildProcess | undefined;

  const launch = async (): Promise<void> => {
    await writeFile(configPath, registryConfig(storageDir, `${host}:${port}`, htpasswdPath, options.proxy));
    const fd = openSync(logFile, 'a');
    try {
      // `ip netns exec` execs the registry: the child's pid is the registry's.
      child = options.netns
        ? spawn('ip', ['netns', 'exec', options.netns, binary, 'serve', configPath], {
            stdio: ['ignore', fd, fd],
          })
        : spawn(binary, ['serve', configPath], { stdio: ['ignore', fd, fd] });
    } finally {
      closeSync(fd);
    }
    trackChild(child);
    try {
      await waitReady(`http://${host}:${port}`, child, 20000);
    } catch (err) {
      child.kill('SIGKILL');
      await waitForExit(child, 5000);
      throw new Error(`${(err as Error).message}; log ${logFile}:\n${tail(logFile)}`);
    }
  };

  for (let attempt = 0; ; attempt++) {
    // A namespace of its own has every port free; the host's free ports say nothing about it.
    if (options.port === undefined) port = options.netns ? 5000 + attempt : await getFreePort();
    try {
      await launch();
      break;
    } catch (err) {
      const inUse = /address already in use/.test((err as Error).message);
      if (!inUse || options.port !== undefined || attempt >= 4) {
        await work.cleanup();
        throw err;
      }
    }
  }

  const terminate = async (signal: NodeJS.Signals): Promise<void> => {
    const c = child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    c.kill(signal);
    if (!(await waitForExit(c, 5000))) {
      c.kill('SIGKILL');
      await waitForExit(c, 5000);
    }
  };

  return {
    url: `http://${host}:${port}`,
    hostPort: `${host}:${port}`,
    port,
    storageDir,
    logFile,
    credentials: options.htpasswd,
    get pid() {
      return child && child.exitCode === null && child.signalCode === null ? child.pid : undefined;
    },
    isRunning: () => !!child && child.exitCode === null && child.signalCode === null,
    async stop() {
      await terminate('SIGTERM');
      await work.cleanup();
    },
    async kill() {
      await terminate('SIGKILL');
    },
    async restart() {
      await terminate('SIGTERM');
      await launch();
    },
  };
}
