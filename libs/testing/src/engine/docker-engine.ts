import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { CommandResult, runCommand, RunOptions } from '../upstream/clients';

/**
 * The binaries of Debian's docker.io and containerd packages. The client is named by path on
 * purpose: a machine may have another docker client earlier on PATH (a standalone newer CLI),
 * and the tier tests the client that ships with the engine it starts (see dev-docs/decisions.md).
 */
export const ENGINE_BINARIES = {
  dockerd: '/usr/sbin/dockerd',
  containerd: '/usr/bin/containerd',
  ctr: '/usr/bin/ctr',
  runc: '/usr/sbin/runc',
  docker: '/usr/bin/docker',
} as const;

export interface DockerEngineOptions {
  /** host:port of plain-http registries the daemon may talk to (`--insecure-registry`). */
  insecureRegistries?: string[];
}

/**
 * A private Docker engine for one test file: its own containerd and dockerd, every socket,
 * pidfile and data directory under `.tmp/engine/<run>/`, vfs storage, no bridge and no
 * iptables (containers run with `--network host`). Nothing of the machine's Docker is used.
 */
export interface DockerEngine {
  readonly dir: string;
  /** `unix://<dir>/docker.sock`, for DOCKER_HOST. */
  readonly host: string;
  /** The containerd socket, for `ctr --address`. */
  readonly containerdAddress: string;
  /** Environment for docker clients: DOCKER_HOST plus a private DOCKER_CONFIG (no auth of the machine). */
  readonly env: NodeJS.ProcessEnv;
  docker(args: readonly string[], options?: RunOptions): Promise<CommandResult>;
  /** `ctr --address <containerd> --namespace gatehouse-test <args>` */
  ctr(args: readonly string[], options?: RunOptions): Promise<CommandResult>;
  /** The daemon's log so far (dockerd and containerd). */
  log(): string;
  /** Stops dockerd, then containerd, each by its PID, and removes the directory. */
  stop(): Promise<void>;
}

/** One line saying why the engine tier cannot run; the tier fails with it, it never skips. */
export class EngineUnavailableError extends Error {
  constructor(reason: string) {
    super(`docker engine tier cannot start: ${reason}`);
    this.name = 'EngineUnavailableError';
  }
}

const REPO_ROOT = resolve(__dirname, '../../../..');

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function stopPid(pid: number, graceMs: number): Promise<void> {
  if (!pidAlive(pid)) return;
  process.kill(pid, 'SIGTERM');
  const until = Date.now() + graceMs;
  while (pidAlive(pid) && Date.now() < until) await sleep(100);
  if (pidAlive(pid)) process.kill(pid, 'SIGKILL');
  while (pidAlive(pid)) await sleep(50);
}

/** Starts a daemon detached from the test's stdio, output appended to `logFile`; returns its PID. */
function spawnDaemon(command: string, args: string[], logFile: string): number {
  const fd = openSync(logFile, 'a');
  try {
    const child = spawn(command, args, { stdio: ['ignore', fd, fd], detached: true });
    child.unref();
    if (!child.pid) throw new EngineUnavailableError(`${command} did not start`);
    // An aborted test process must not leave daemons running.
    const pid = child.pid;
    process.once('exit', () => {
      if (pidAlive(pid)) process.kill(pid, 'SIGKILL');
    });
    return pid;
  } finally {
    closeSync(fd);
  }
}

function lastLine(file: string): string {
  if (!existsSync(file)) return '(no log)';
  const lines = readFileSync(file, 'utf8').trim().split('\n');
  const errors = lines.filter((l) => /level=(error|fatal)|failed|error/i.test(l));
  return (errors[errors.length - 1] ?? lines[lines.length - 1] ?? '').slice(0, 400);
}

export async function startDockerEngine(options: DockerEngineOptions = {}): Promise<DockerEngine> {
  for (const [name, path] of Object.entries(ENGINE_BINARIES)) {
    if (!existsSync(path))
      throw new EngineUnavailableError(
        `${name} is missing (${path}): install the Debian packages docker.io and containerd (bash scripts/setup.sh does)`,
      );
  }
  if (process.getuid?.() !== 0)
    throw new EngineUnavailableError(`dockerd needs root; this test runs as uid ${process.getuid?.()}`);

  const dir = join(REPO_ROOT, '.tmp', 'engine', `${process.pid}-${randomBytes(3).toString('hex')}`);
  mkdirSync(dir, { recursive: true });
  const p = (...parts: string[]) => join(dir, ...parts);
  const containerdAddress = p('containerd.sock');
  const dockerSock = p('docker.sock');
  const logFile = p('engine.log');
  // Unix socket paths are limited to 107 bytes.
  if (Buffer.byteLength(`${containerdAddress}.ttrpc`) > 107) {
    rmSync(dir, { recursive: true, force: true });
    throw new EngineUnavailableError(
      `the socket path ${containerdAddress}.ttrpc is longer than 107 bytes: use a checkout with a shorter path`,
    );
  }
  for (const d of ['containerd-root', 'containerd-state', 'data', 'exec', 'client-config'])
    mkdirSync(p(d), { recursive: true });
  // A config of its own, so the machine's /etc/containerd/config.toml is never read; the CRI
  // plugin (Kubernetes) is not needed and only slows the start.
  writeFileSync(
    p('containerd.toml'),
    [
      'version = 2',
      `root = "${p('containerd-root')}"`,
      `state = "${p('containerd-state')}"`,
      'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
      '[grpc]',
      `  address = "${containerdAddress}"`,
      '[ttrpc]',
      `  address = "${containerdAddress}.ttrpc"`,
      '',
    ].join('\n'),
  );
  writeFileSync(p('daemon.json'), JSON.stringify({}));
  writeFileSync(p('client-config', 'config.json'), JSON.stringify({ auths: {} }));

  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: p('client-config'),
    DOCKER_HOST: `unix://${dockerSock}`,
    DOCKER_CONFIG: p('client-config'),
  };
  const docker = (args: readonly string[], o: RunOptions = {}) =>
    runCommand(ENGINE_BINARIES.docker, args, { ...o, env: { ...env, ...o.env } });
  const ctr = (args: readonly string[], o: RunOptions = {}) =>
    runCommand(
      ENGINE_BINARIES.ctr,
      ['--address', containerdAddress, '--namespace', 'gatehouse-test', ...args],
      {
        ...o,
        env: { ...env, ...o.env },
      },
    );

  const pids: { containerd?: number; dockerd?: number } = {};
  const stop = async () => {
    if (existsSync(p('dockerd.pid'))) {
      const pid = Number(readFileSync(p('dockerd.pid'), 'utf8'));
      if (pid > 0) await stopPid(pid, 20_000);
    }
    if (pids.dockerd) await stopPid(pids.dockerd, 20_000);
    if (pids.containerd) await stopPid(pids.containerd, 10_000);
    // dockerd can leave its host-network namespace bind-mounted under exec-root.
    for (const mountpoint of mountsUnder(dir)) await runCommand('umount', ['-l', mountpoint]);
    rmSync(dir, { recursive: true, force: true });
  };

  try {
    pids.containerd = spawnDaemon(
      ENGINE_BINARIES.containerd,
      ['--config', p('containerd.toml'), '--log-level', 'warn'],
      logFile,
    );
    await waitFor(
      'containerd',
      30_000,
      logFile,
      pids.containerd,
      async () => (await ctr(['version'])).code === 0,
    );
    pids.dockerd = spawnDaemon(
      ENGINE_BINARIES.dockerd,
      [
        '--config-file',
        p('daemon.json'),
        '--containerd',
        containerdAddress,
        '--data-root',
        p('data'),
        '--exec-root',
        p('exec'),
        '--pidfile',
        p('dockerd.pid'),
        '-H',
        `unix://${dockerSock}`,
        '--storage-driver=vfs',
        '--iptables=false',
        '--ip6tables=false',
        '--bridge=none',
        '--log-level=warn',
        ...(options.insecureRegistries ?? []).flatMap((r) => ['--insecure-registry', r]),
      ],
      logFile,
    );
    await waitFor(
      'dockerd',
      60_000,
      logFile,
      pids.dockerd,
      async () => (await docker(['version'])).code === 0,
    );
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    await stop().catch(() => undefined);
    throw e instanceof EngineUnavailableError ? e : new EngineUnavailableError(message);
  }

  return {
    dir,
    host: env.DOCKER_HOST!,
    containerdAddress,
    env,
    docker,
    ctr,
    log: () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : ''),
    stop,
  };
}

/** Mount points under `dir`, deepest first (from /proc/self/mounts; octal escapes decoded). */
function mountsUnder(dir: string): string[] {
  const text = existsSync('/proc/self/mounts') ? readFileSync('/proc/self/mounts', 'utf8') : '';
  return text
    .split('\n')
    .map((line) =>
      (line.split(' ')[1] ?? '').replace(/\\([0-7]{3})/g, (_m, o: string) =>
        String.fromCharCode(parseInt(o, 8)),
      ),
    )
    .filter((mp) => mp === dir || mp.startsWith(dir + '/'))
    .sort((a, b) => b.length - a.length);
}

async function waitFor(
  name: string,
  timeoutMs: number,
  logFile: string,
  pid: number,
  ready: () => Promise<boolean>,
): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (await ready()) return;
    if (!pidAlive(pid)) throw new EngineUnavailableError(`${name} exited: ${lastLine(logFile)}`);
    if (Date.now() > until)
      throw new EngineUnavailableError(`${name} not ready after ${timeoutMs} ms: ${lastLine(logFile)}`);
    await sleep(250);
  }
}
