import { Injectable, OnApplicationShutdown } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Client } from 'pg';
import { GatewayConfig } from '@gatehouse/config';
import { AppLogger } from '@gatehouse/observability';
import { EmbeddedPostgresError, ensureDatabase, PostgresCluster, processAlive } from './postgres-cluster';

export const EMBEDDED_DATABASE = 'gatehouse';

/** Contents of `<DATA_DIR>/postgres.json` while a process runs the embedded server. */
export interface EmbeddedOwnerFile {
  /** Process that started the server and will stop it. */
  pid: number;
  /** null while that process is still starting the server. */
  url: string | null;
  postmasterPid?: number;
  startedAt?: string;
}

/** Owner files written by this process, so a reused pid (pid 1 in a restarted container) is not taken for a live owner. */
const ownedHere = new Set<string>();

/**
 * The embedded PostgreSQL used when DATABASE_URL is unset: a cluster under
 * `config.database.embeddedDir`, initialised on first use, started on a free 127.0.0.1 port.
 *
 * Only one server may run on a data directory, yet the operator CLI must work while the gateway
 * runs. The process that starts the server (the owner) publishes its URL in
 * `<DATA_DIR>/postgres.json`; any other process finding a live owner there connects to that URL
 * and leaves the server alone.
 */
@Injectable()
export class EmbeddedPostgresService implements OnApplicationShutdown {
  private starting: Promise<string> | null = null;
  private cluster: PostgresCluster | null = null;
  private connectedUrl: string | null = null;
  private mode: 'owner' | 'client' | null = null;
  private readonly beforeStop: Array<() => Promise<void>> = [];

  constructor(
    private readonly config: GatewayConfig,
    private readonly logger: AppLogger,
  ) {}

  get embeddedDir(): string {
    return this.config.database.embeddedDir;
  }

  get ownerFile(): string {
    return path.join(path.dirname(this.embeddedDir), 'postgres.json');
  }

  get passwordFile(): string {
    return path.join(path.dirname(this.embeddedDir), 'postgres.password');
  }

  /** `owner` when this process runs the server, `client` when it uses another process's server. */
  get role(): 'owner' | 'client' | null {
    return this.mode;
  }

  /** URL of the `gatehouse` database once started. */
  get url(): string | null {
    return this.connectedUrl;
  }

  /** Runs before the server stops, so pools close cleanly instead of being cut off. */
  registerBeforeStop(fn: () => Promise<void>): void {
    this.beforeStop.push(fn);
  }

  /** Starts (or joins) the embedded server; resolves to the `gatehouse` database URL. Idempotent. */
  start(): Promise<string> {
    this.starting ??= this.doStart().catch((e) => {
      this.starting = null;
      throw e;
    });
    return this.starting;
  }

  async stop(): Promise<void> {
    const starting = this.starting;
    if (!starting) return;
    await starting.catch(() => undefined);
    for (const fn of this.beforeStop.splice(0)) {
      await fn().catch((e) =>
        this.logger.warn({ err: e }, 'closing a database pool before stopping PostgreSQL failed'),
      );
    }
    if (this.mode === 'owner' && this.cluster) {
      await this.cluster.stop();
      this.releaseOwnerFile();
      this.logger.info({ dataDir: this.embeddedDir }, 'embedded PostgreSQL stopped');
    }
    this.cluster = null;
    this.mode = null;
    this.connectedUrl = null;
    this.starting = null;
  }

  async onApplicationShutdown(): Promise<void> {
    await this.stop();
  }

  private async doStart(): Promise<string> {
    this.ensureDataDirWritable();
    const deadline = Date.now() + 60_000;
    for (;;) {
      const claimed = this.tryClaim();
      if (claimed) break;
      const owner = this.readOwnerFile();
      if (owner === 'stale') continue;
      if (owner && owner.url && (await reachable(owner.url))) {
        this.mode = 'client';
        this.connectedUrl = owner.url;
        this.logger.info(
          { dataDir: this.embeddedDir, ownerPid: owner.pid },
          'using the embedded PostgreSQL run by another Gatehouse process',
        );
        return owner.url;
      }
      if (Date.now() > deadline) {
        throw new EmbeddedPostgresError(
          `Gatehouse process ${owner ? owner.pid : '?'} owns the embedded PostgreSQL (${this.ownerFile}) but it does not answer. Fix: wait for that process to finish starting, or stop it.`,
        );
      }
      // The owner is still starting (or stopping): wait for its URL.
      await sleep(200);
    }

    try {
      this.cluster = new PostgresCluster({
        dataDir: this.embeddedDir,
        port: this.config.database.embeddedPort || undefined,
        password: this.password(),
        log: (message) => this.logger.info({ dataDir: this.embeddedDir }, message),
      });
      await this.cluster.initialise();
      await this.cluster.start();
      await ensureDatabase(this.cluster.url('postgres'), EMBEDDED_DATABASE);
      const url = this.cluster.url(EMBEDDED_DATABASE);
      writeAtomic(
        this.ownerFile,
        JSON.stringify({
          pid: process.pid,
          url,
          postmasterPid: this.cluster.pid,
          startedAt: new Date().toISOString(),
        } satisfies EmbeddedOwnerFile),
      );
      this.mode = 'owner';
      this.connectedUrl = url;
      this.logger.info(
        { dataDir: this.embeddedDir, port: this.cluster.port },
        'embedded PostgreSQL started (set DATABASE_URL to use an external server)',
      );
      return url;
    } catch (e) {
      await this.cluster?.stop().catch(() => undefined);
      this.cluster = null;
      this.releaseOwnerFile();
      const pinned = this.config.database.embeddedPort;
      if (pinned && /could not bind|Address already in use/i.test((e as Error).message)) {
        throw new EmbeddedPostgresError(
          `the embedded PostgreSQL cannot listen on 127.0.0.1:${pinned}: the port is in use. Fix: stop what listens there, or set DATABASE_EMBEDDED_PORT to a free port (0: any free port)`,
        );
      }
      throw e;
    }
  }

  /** Creates the owner file exclusively: the winner of two simultaneous starts runs the server. */
  private tryClaim(): boolean {
    try {
      fs.writeFileSync(
        this.ownerFile,
        JSON.stringify({ pid: process.pid, url: null } satisfies EmbeddedOwnerFile),
        {
          flag: 'wx',
          mode: 0o600,
        },
      );
      ownedHere.add(this.ownerFile);
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw this.dataDirError(e as NodeJS.ErrnoException);
    }
  }

  /** The current owner, or 'stale' after removing a file whose owner is gone. */
  private readOwnerFile(): EmbeddedOwnerFile | null | 'stale' {
    let owner: EmbeddedOwnerFile;
    try {
      owner = JSON.parse(fs.readFileSync(this.ownerFile, 'utf8')) as EmbeddedOwnerFile;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 'stale';
      // A claim being written right now is unreadable for a moment; one left by a crash stays so.
      const age = Date.now() - (fs.statSync(this.ownerFile, { throwIfNoEntry: false })?.mtimeMs ?? 0);
      return age < 2_000 ? { pid: 0, url: null } : this.removeStale('unreadable');
    }
    const alive = owner.pid === process.pid ? ownedHere.has(this.ownerFile) : processAlive(owner.pid);
    if (!alive) return this.removeStale(`process ${owner.pid} is gone`);
    return owner;
  }

  private removeStale(why: string): 'stale' {
    this.logger.warn({ file: this.ownerFile }, `removing stale embedded PostgreSQL owner file (${why})`);
    fs.rmSync(this.ownerFile, { force: true });
    return 'stale';
  }

  private releaseOwnerFile(): void {
    if (!ownedHere.has(this.ownerFile)) return;
    ownedHere.delete(this.ownerFile);
    try {
      const owner = JSON.parse(fs.readFileSync(this.ownerFile, 'utf8')) as EmbeddedOwnerFile;
      if (owner.pid === process.pid) fs.rmSync(this.ownerFile, { force: true });
    } catch {
      // Already gone.
    }
  }

  /** The superuser password, generated at first start and kept next to the data directory. */
  private password(): string {
    try {
      return fs.readFileSync(this.passwordFile, 'utf8').trim();
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw this.dataDirError(e as NodeJS.ErrnoException);
    }
    if (fs.existsSync(path.join(this.embeddedDir, 'PG_VERSION'))) {
      throw new EmbeddedPostgresError(
        `${this.passwordFile} is missing, so the existing embedded PostgreSQL in ${this.embeddedDir} cannot be opened. Fix: restore that file, or move ${this.embeddedDir} away to start an empty database.`,
      );
    }
    const password = randomBytes(24).toString('hex');
    fs.writeFileSync(this.passwordFile, password + '\n', { mode: 0o600 });
    return password;
  }

  private ensureDataDirWritable(): void {
    const dataDir = path.dirname(this.embeddedDir);
    try {
      fs.mkdirSync(dataDir, { recursive: true });
      fs.accessSync(dataDir, fs.constants.W_OK);
    } catch (e) {
      throw this.dataDirError(e as NodeJS.ErrnoException);
    }
  }

  private dataDirError(e: NodeJS.ErrnoException): EmbeddedPostgresError {
    const dataDir = path.dirname(this.embeddedDir);
    return new EmbeddedPostgresError(
      `DATA_DIR ${dataDir} is not writable (${e.code ?? e.message}), so the embedded PostgreSQL cannot start. Fix: make it writable by this user (uid ${process.getuid?.() ?? '?'}), set DATA_DIR to a writable directory, or set DATABASE_URL to an external PostgreSQL.`,
    );
  }
}

async function reachable(url: string): Promise<boolean> {
  const client = new Client({ connectionString: url, connectionTimeoutMillis: 2_000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

function writeAtomic(file: string, content: string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, content, { mode: 0o600 });
  fs.renameSync(tmp, file);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
