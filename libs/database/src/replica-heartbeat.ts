import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import type { BeforeApplicationShutdown, OnApplicationBootstrap } from '@nestjs/common';
import type { DataSource } from 'typeorm';
import type { AppLogger, Clock } from '@gatehouse/observability';

/** One gateway process as its heartbeat row says. */
export interface ReplicaRow {
  id: string;
  hostname: string;
  pid: number;
  version: string;
  listenAddress: string;
  startedAt: Date;
  lastSeenAt: Date;
}

/** Where heartbeats live: `gateway_replicas` in PostgreSQL, or a fake in unit tests. */
export interface ReplicaStore {
  /** Inserts the row or moves its `lastSeenAt` on. */
  beat(row: ReplicaRow): Promise<void>;
  /** Deletes rows last seen before `before`; how many went. */
  prune(before: Date): Promise<number>;
  list(): Promise<ReplicaRow[]>;
}

/** Runs `fn` every `ms` until the returned stop is called (an unref'd setInterval by default). */
export type HeartbeatTimer = (ms: number, fn: () => void) => () => void;

export const intervalTimer: HeartbeatTimer = (ms, fn) => {
  const timer = setInterval(fn, ms);
  timer.unref();
  return () => clearInterval(timer);
};

export interface HeartbeatTiming {
  /** Between two beats; 15 s. */
  intervalMs: number;
  /** A replica last seen within this is "seen recently"; 60 s. */
  recentMs: number;
  /** A quiet replica's row is kept this long, then pruned; a day. */
  keepMs: number;
}

export const HEARTBEAT_TIMING: HeartbeatTiming = {
  intervalMs: 15_000,
  recentMs: 60_000,
  keepMs: 86_400_000,
};

export interface ReplicaView extends ReplicaRow {
  /** This process. */
  self: boolean;
}

/** The console's view: replicas seen in the last minute, and those gone quiet (newest first). */
export interface ReplicaListing {
  recent: ReplicaView[];
  quiet: ReplicaView[];
}

const COLUMNS = `id, hostname, pid, version, listen_address AS "listenAddress", started_at AS "startedAt",
  last_seen_at AS "lastSeenAt"`;

export class PgReplicaStore implements ReplicaStore {
  constructor(private readonly db: DataSource) {}

  async beat(r: ReplicaRow): Promise<void> {
    await this.db.query(
      `INSERT INTO gateway_replicas (id, hostname, pid, version, listen_address, started_at, last_seen_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7)
       ON CONFLICT (id) DO UPDATE SET last_seen_at = EXCLUDED.last_seen_at`,
      [r.id, r.hostname, r.pid, r.version, r.listenAddress, r.startedAt, r.lastSeenAt],
    );
  }

  async prune(before: Date): Promise<number> {
    const [, count] = (await this.db.query(`DELETE FROM gateway_replicas WHERE last_seen_at < $1`, [
      before,
    ])) as [unknown, number];
    return count;
  }

  async list(): Promise<ReplicaRow[]> {
    return this.db.query(`SELECT ${COLUMNS} FROM gateway_replicas ORDER BY last_seen_at DESC, id`);
  }
}

/** The version in the nearest package.json above this file (the same in the source tree and dist/). */
export function gatewayVersion(from = __dirname): string {
  for (let dir = from; ; dir = dirname(dir)) {
    const file = join(dir, 'package.json');
    if (existsSync(file)) {
      try {
        return String((JSON.parse(readFileSync(file, 'utf8')) as { version?: unknown }).version ?? 'unknown');
      } catch {
        return 'unknown';
      }
    }
    if (dirname(dir) === dir) return 'unknown';
  }
}

/**
 * This replica's heartbeat: a row in `gateway_replicas` written at start and every ~15 s, keyed
 * by hostname, pid and a random part (two gateways in one process stay apart). Each beat also
 * prunes rows quiet for a day. A failed beat (the database away) is logged once per outage and
 * retried at the next interval; it never throws. Times come from the injected clock.
 */
export class ReplicaHeartbeat implements OnApplicationBootstrap, BeforeApplicationShutdown {
  readonly self: Omit<ReplicaRow, 'lastSeenAt'>;
  private stopTimer: (() => void) | null = null;
  private running: Promise<void> | null = null;
  private failing = false;

  constructor(
    private readonly store: ReplicaStore,
    private readonly clock: Clock,
    private readonly logger: AppLogger,
    identity: { listenAddress: string; version?: string; hostname?: string; pid?: number },
    private readonly timing: HeartbeatTiming = HEARTBEAT_TIMING,
    private readonly timer: HeartbeatTimer = intervalTimer,
  ) {
    const host = identity.hostname ?? hostname();
    const pid = identity.pid ?? process.pid;
    this.self = {
      id: `${host}:${pid}:${randomBytes(4).toString('hex')}`,
      hostname: host,
      pid,
      version: identity.version ?? gatewayVersion(),
      listenAddress: identity.listenAddress,
      startedAt: clock.date(),
    };
  }

  onApplicationBootstrap(): Promise<void> {
    return this.start();
  }

  /** Before the connection pool closes. */
  beforeApplicationShutdown(): Promise<void> {
    return this.stop();
  }

  /** First beat now, then every interval. */
  start(): Promise<void> {
    if (!this.stopTimer) this.stopTimer = this.timer(this.timing.intervalMs, () => void this.beat());
    return this.beat();
  }

  /** No more beats; waits for one in flight. The row stays and goes quiet. */
  async stop(): Promise<void> {
    this.stopTimer?.();
    this.stopTimer = null;
    await this.running;
  }

  /** One beat (skipped while the previous one still runs); resolves even when the database is away. */
  beat(): Promise<void> {
    this.running ??= this.beatOnce().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private async beatOnce(): Promise<void> {
    const now = this.clock.now();
    try {
      await this.store.beat({ ...this.self, lastSeenAt: new Date(now) });
      await this.store.prune(new Date(now - this.timing.keepMs));
      if (this.failing) this.logger.info({ replica: this.self.id }, 'replica heartbeat written again');
      this.failing = false;
    } catch (e) {
      if (!this.failing)
        this.logger.warn(
          { err: e, replica: this.self.id },
          'replica heartbeat failed; retrying every interval (the health page shows this replica as quiet meanwhile)',
        );
      this.failing = true;
    }
  }

  /** Every row, split at one minute before now into seen recently and gone quiet. */
  async seen(): Promise<ReplicaListing> {
    const now = this.clock.now();
    const since = now - this.timing.recentMs;
    const rows = (await this.store.list()).map((r) => ({
      ...r,
      startedAt: new Date(r.startedAt),
      lastSeenAt: new Date(r.lastSeenAt),
      self: r.id === this.self.id,
    }));
    rows.sort((a, b) => b.lastSeenAt.getTime() - a.lastSeenAt.getTime() || a.id.localeCompare(b.id));
    return {
      recent: rows.filter((r) => r.lastSeenAt.getTime() >= since),
      quiet: rows.filter(
        (r) => r.lastSeenAt.getTime() < since && r.lastSeenAt.getTime() >= now - this.timing.keepMs,
      ),
    };
  }
}
