import {
  BeforeApplicationShutdown,
  Inject,
  Injectable,
  OnApplicationBootstrap,
  Optional,
} from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { Counter, Gauge } from 'prom-client';
import { DataSource, QueryFailedError } from 'typeorm';
import { QueryDeepPartialEntity } from 'typeorm/query-builder/QueryPartialEntity';
import { AppLogger, MetricsService, RequestContext } from '@gatehouse/observability';
import { AuditEvent } from './audit-event.entity';
import { AuditEventInput } from './audit-event.input';
import { AuditQueue } from './audit-queue';
import { AuditSpool, spoolLine } from './audit-spool';

export interface AuditWriterOptions {
  /** Longest an event waits in memory before a write starts. */
  flushIntervalMs: number;
  /** Events per INSERT; a full batch is written at once. */
  batchSize: number;
  /**
   * Events held in memory. Past it, events go straight to the spool (or, without one, are
   * dropped and counted).
   */
  maxQueue: number;
  retryMinMs: number;
  retryMaxMs: number;
  /** How long shutdown waits for the database before spooling what is left. */
  shutdownTimeoutMs: number;
  /**
   * A write that has not finished in this time counts as an outage: a database that hangs
   * (network partition, a lock held) must not keep events in memory any more than one that
   * refuses connections. A write that commits after all is harmless: replay skips stored ids.
   */
  writeTimeoutMs: number;
  /**
   * Directory of the disk spool that keeps events while PostgreSQL is unreachable
   * (`DATA_DIR/audit-spool`); null: no spool, events wait in memory only.
   */
  spoolDir: string | null;
  /** Bound of the spool on disk; past it (a long outage) events are dropped and counted. */
  spoolMaxBytes: number;
  spoolSegmentMaxBytes: number;
}

export const AUDIT_WRITER_OPTIONS = Symbol('AUDIT_WRITER_OPTIONS');

export const DEFAULT_AUDIT_WRITER_OPTIONS: AuditWriterOptions = {
  flushIntervalMs: 200,
  batchSize: 500,
  maxQueue: 100_000,
  retryMinMs: 200,
  retryMaxMs: 10_000,
  shutdownTimeoutMs: 10_000,
  writeTimeoutMs: 10_000,
  spoolDir: null,
  spoolMaxBytes: 1024 * 1024 * 1024,
  spoolSegmentMaxBytes: 16 * 1024 * 1024,
};

type Waiter = { seq: number; resolve: (done: boolean) => void };

/**
 * Records audit events without ever blocking or failing the request that reports them.
 *
 * `record` only queues in memory. A background writer stores batches with one multi-row
 * `INSERT ... ON CONFLICT (id) DO NOTHING`. When PostgreSQL is unreachable the writer moves the
 * queue to an fsync'd append-only spool on disk and probes the database with backoff; when it
 * answers, the spool is replayed (idempotent thanks to the event ids) and each segment deleted
 * once its rows are committed. A spool left by a crash is replayed at the next start.
 */
@Injectable()
export class AuditService implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly options: AuditWriterOptions;
  private readonly queue: AuditQueue<AuditEvent>;
  private readonly spool: AuditSpool | null;
  private timer: NodeJS.Timeout | null = null;
  private timerDue = 0;
  private writing: Promise<void> | null = null;
  private backoffMs = 0;
  /** While set, the database is believed down: batches go to the spool until this time passes. */
  private outageUntil = 0;
  private outage = false;
  /** Set by a failure, cleared (and logged) by the next successful write. */
  private degraded = false;
  private spoolUnavailableLogged = false;
  private waiters: Waiter[] = [];
  private readonly dropped: Counter;
  private readonly written: Counter;
  private readonly spooled: Counter;
  private readonly torn: Counter;
  private readonly depth: Gauge;
  private readonly spoolBytes: Gauge;

  constructor(
    private readonly dataSource: DataSource,
    metrics: MetricsService,
    private readonly logger: AppLogger,
    @Optional() @Inject(AUDIT_WRITER_OPTIONS) options?: Partial<AuditWriterOptions>,
  ) {
    this.options = { ...DEFAULT_AUDIT_WRITER_OPTIONS, ...options };
    this.queue = new AuditQueue(this.options.maxQueue);
    this.spool = this.options.spoolDir
      ? new AuditSpool({
          dir: this.options.spoolDir,
          maxBytes: this.options.spoolMaxBytes,
          segmentMaxBytes: this.options.spoolSegmentMaxBytes,
          lockStaleMs: 60_000,
        })
      : null;
    this.dropped = metrics.counter(
      'gatehouse_audit_events_dropped_total',
      'Audit events lost: memory queue full and the disk spool full or unavailable, or an event the database rejects',
    );
    this.written = metrics.counter(
      'gatehouse_audit_events_written_total',
      'Audit events stored in the database',
    );
    this.spooled = metrics.counter(
      'gatehouse_audit_events_spooled_total',
      'Audit events written to the disk spool because the database was unreachable or the memory queue full',
    );
    this.torn = metrics.counter(
      'gatehouse_audit_spool_torn_lines_total',
      'Spool lines skipped at replay because a crash cut them short',
    );
    this.depth = metrics.gauge('gatehouse_audit_queue_depth', 'Audit events waiting in memory to be stored');
    this.spoolBytes = metrics.gauge(
      'gatehouse_audit_spool_bytes',
      'Bytes of audit events waiting in the disk spool',
    );
  }

  /** Replays a spool left by an earlier run, in the background. */
  onApplicationBootstrap(): void {
    this.resumeSpool();
  }

  /** Events waiting in memory to be written. */
  get pending(): number {
    return this.queue.length;
  }

  /** Bytes waiting in the disk spool of this process. */
  get spoolPendingBytes(): number {
    return this.spool?.isOwner ? this.spool.bytes : 0;
  }

  /** Queues one event. Never throws and never waits for the database. */
  record(input: AuditEventInput): void {
    try {
      const event = this.toEvent(input);
      if (!this.queue.push(event)) {
        this.overflow(event);
        return;
      }
      this.depth.set(this.queue.length);
      this.schedule(this.queue.length >= this.options.batchSize ? 0 : this.options.flushIntervalMs);
    } catch (e) {
      this.dropped.inc();
      this.logger.error({ err: e, action: input?.action }, 'audit event could not be queued');
    }
  }

  /**
   * Resolves true once every event queued before the call is stored in the database (the spool
   * replayed too), or false when `timeoutMs` passes first (the events stay queued or spooled).
   */
  flush(timeoutMs = Number.POSITIVE_INFINITY): Promise<boolean> {
    const seq = this.queue.lastEnqueued;
    if (this.isStored(seq)) return Promise.resolve(true);
    return new Promise<boolean>((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const waiter: Waiter = {
        seq,
        resolve: (done) => {
          if (timer) clearTimeout(timer);
          resolve(done);
        },
      };
      this.waiters.push(waiter);
      // Unlike the writer's timers this one holds the process open: a shutdown waits for it.
      if (Number.isFinite(timeoutMs)) {
        timer = setTimeout(() => {
          this.waiters = this.waiters.filter((w) => w !== waiter);
          resolve(false);
        }, timeoutMs);
      }
      // An explicit flush probes the database now instead of waiting out the backoff.
      this.outageUntil = 0;
      this.schedule(0);
    });
  }

  async beforeApplicationShutdown(): Promise<void> {
    if (this.queue.length > 0 || this.spoolPendingBytes > 0) {
      const done = await this.flush(this.options.shutdownTimeoutMs);
      if (!done) await this.spoolAtShutdown();
    }
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.writing;
    this.spool?.release();
  }

  private isStored(seq: number): boolean {
    return this.queue.lastRemoved >= seq && this.spoolPendingBytes === 0;
  }

  /** What is still in memory when the database stayed away through shutdown goes to disk. */
  private async spoolAtShutdown(): Promise<void> {
    await this.writing;
    const left = this.queue.length;
    if (left === 0) {
      this.logger.warn(
        { spoolBytes: this.spoolPendingBytes },
        'audit events are in the spool: the database is unreachable; they are stored at the next start',
      );
      return;
    }
    const spool = this.ownSpool();
    const batch = this.queue.peek(left);
    const lines = batch.map(spoolLine);
    if (spool && spool.hasRoomFor(lines)) {
      try {
        await spool.append(lines);
        this.queue.remove(batch.length);
        this.spooled.inc(batch.length);
        this.updateGauges();
        this.logger.warn(
          { spooled: batch.length, dir: this.options.spoolDir },
          'the database is unreachable at shutdown: audit events were spooled to disk and are stored at the next start',
        );
        return;
      } catch (e) {
        this.logger.error({ err: e }, 'audit events could not be spooled at shutdown');
      }
    }
    this.dropped.inc(left);
    this.logger.error(
      { lost: left },
      'audit events lost at shutdown: the database is unreachable and there is no usable spool',
    );
  }

  /** The memory queue is full: the event goes to the spool directly, else it is dropped. */
  private overflow(event: AuditEvent): void {
    const spool = this.ownSpool();
    const line = spoolLine(event);
    if (spool && spool.hasRoomFor([line])) {
      try {
        spool.appendSync([line]);
        this.spooled.inc();
        this.updateGauges();
        this.schedule(0);
        return;
      } catch (e) {
        this.logger.error({ err: e }, 'audit event could not be spooled');
      }
    }
    this.dropped.inc();
  }

  /** Takes the spool on first use (or returns null: none configured, or another process owns it). */
  private ownSpool(): AuditSpool | null {
    if (!this.spool) return null;
    try {
      if (this.spool.acquire()) return this.spool;
      if (!this.spoolUnavailableLogged) {
        this.spoolUnavailableLogged = true;
        this.logger.warn(
          { dir: this.options.spoolDir },
          'the audit spool is in use by another process; this process keeps unwritten audit events in memory only',
        );
      }
    } catch (e) {
      if (!this.spoolUnavailableLogged) {
        this.spoolUnavailableLogged = true;
        this.logger.error({ err: e, dir: this.options.spoolDir }, 'the audit spool directory is not usable');
      }
    }
    return null;
  }

  /** At start: a spool directory that holds segments is taken over and replayed. */
  private resumeSpool(): void {
    if (!this.spool) return;
    let segments: number;
    try {
      segments = this.spool.segments().length;
    } catch (e) {
      this.logger.error({ err: e, dir: this.options.spoolDir }, 'the audit spool directory is not readable');
      return;
    }
    if (segments === 0 || !this.ownSpool()) return;
    this.logger.info(
      { segments, bytes: this.spool.bytes },
      'replaying audit events spooled while the database was unreachable',
    );
    this.updateGauges();
    this.schedule(0);
  }

  private toEvent(input: AuditEventInput): AuditEvent {
    const ctx = RequestContext.current();
    const e = new AuditEvent();
    e.id = input.id ?? randomUUID();
    e.occurredAt = input.occurredAt ?? new Date();
    e.requestId = input.requestId ?? ctx?.requestId ?? null;
    e.clientRequestId = input.clientRequestId ?? ctx?.clientRequestId ?? null;
    e.memberId = input.memberId ?? ctx?.memberId ?? null;
    e.username = input.username ?? ctx?.username ?? null;
    e.clientIp = input.clientIp ?? ctx?.clientIp ?? null;
    e.userAgent = input.userAgent ?? ctx?.userAgent ?? null;
    e.action = input.action;
    e.repository = input.repository ?? null;
    e.reference = input.reference ?? null;
    e.digest = input.digest ?? null;
    e.outcome = input.outcome;
    e.reason = input.reason ?? null;
    e.httpStatus = input.httpStatus ?? null;
    e.bytes = input.bytes ?? null;
    e.cache = input.cache ?? null;
    e.durationMs =
      input.durationMs === undefined || input.durationMs === null ? null : Math.round(input.durationMs);
    e.upstreamStatus = input.upstreamStatus ?? null;
    e.details = input.details ?? null;
    return e;
  }

  /** Arms the writer to run within `delayMs` (an earlier schedule wins). */
  private schedule(delayMs: number): void {
    if (this.writing) return;
    const due = Date.now() + delayMs;
    if (this.timer) {
      if (this.timerDue <= due) return;
      clearTimeout(this.timer);
    }
    this.timerDue = due;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.writing = this.drain()
        .catch((e: unknown) => this.logger.error({ err: e }, 'audit writer failed'))
        .finally(() => {
          this.writing = null;
          this.afterDrain();
        });
    }, delayMs);
    // Pending audit events must not keep a finished process alive; shutdown flushes them.
    this.timer.unref();
  }

  private async drain(): Promise<void> {
    await this.spool?.sync().catch((e: unknown) => this.logger.error({ err: e }, 'audit spool fsync failed'));
    if (!this.outage || Date.now() >= this.outageUntil) {
      const replay = await this.replaySpool();
      if (replay === 'failed') this.enterOutage();
      else this.outage = false;
      if (replay === 'replayed') this.recovered();
    }
    while (this.queue.length > 0) {
      const batch = this.queue.peek(this.options.batchSize);
      if (!this.outage) {
        try {
          await this.insert(batch);
          this.recovered();
          this.queue.remove(batch.length);
          this.updateGauges();
          this.releaseWaiters();
          continue;
        } catch (e) {
          this.enterOutage(e);
        }
      }
      if (!(await this.spoolBatch(batch))) return;
    }
  }

  /** Replays the spool's segments oldest first. */
  private async replaySpool(): Promise<'nothing' | 'replayed' | 'failed'> {
    const spool = this.spool;
    if (!spool?.isOwner || spool.bytes === 0) return 'nothing';
    // Everything on disk is replayed, so the segment being appended to is closed first.
    spool.seal();
    for (const segment of spool.sealedSegments()) {
      let read;
      try {
        read = await spool.read(segment.file);
      } catch (e) {
        this.logger.error(
          { err: e, file: segment.file },
          'audit spool segment is not readable; left in place',
        );
        continue;
      }
      try {
        for (let i = 0; i < read.events.length; i += this.options.batchSize)
          await this.insert(read.events.slice(i, i + this.options.batchSize));
      } catch (e) {
        this.logger.warn({ err: e }, 'audit spool replay interrupted: the database is unreachable');
        return 'failed';
      }
      // Only now are its rows committed: deleting earlier could lose them to a crash.
      await spool.remove(segment);
      if (read.torn > 0) {
        this.torn.inc(read.torn);
        this.logger.warn(
          { file: segment.file, torn: read.torn },
          'skipped audit spool lines cut short by a crash',
        );
      }
      this.logger.info({ events: read.events.length }, 'replayed audit events from the spool');
      this.updateGauges();
    }
    this.releaseWaiters();
    return 'replayed';
  }

  private recovered(): void {
    if (this.degraded) this.logger.info({ pending: this.queue.length }, 'audit writes recovered');
    this.degraded = false;
    this.outage = false;
    this.backoffMs = 0;
  }

  /** Writes a batch to the spool; false (batch kept in memory) when that is not possible. */
  private async spoolBatch(batch: AuditEvent[]): Promise<boolean> {
    const spool = this.ownSpool();
    const lines = batch.map(spoolLine);
    if (!spool) return false;
    if (!spool.hasRoomFor(lines)) {
      this.logger.error(
        { spoolBytes: spool.bytes, maxBytes: this.options.spoolMaxBytes, pending: this.queue.length },
        'the audit spool is full; keeping events in memory (they are dropped when that fills too)',
      );
      return false;
    }
    try {
      await spool.append(lines);
    } catch (e) {
      this.logger.error({ err: e, dir: this.options.spoolDir }, 'audit events could not be spooled');
      return false;
    }
    this.queue.remove(batch.length);
    this.spooled.inc(batch.length);
    this.updateGauges();
    return true;
  }

  /**
   * One multi-row INSERT, ignoring ids already stored (a replay after a crash, or a write that
   * committed although the client saw an error). Rows the database refuses as data (SQLSTATE
   * classes 22 and 23) are written one by one and the refused ones logged and dropped, so one
   * bad event cannot block the trail; every other error means "unreachable" and is thrown.
   */
  private async insert(batch: AuditEvent[]): Promise<void> {
    if (batch.length === 0) return;
    try {
      this.written.inc(await this.insertRows(batch));
    } catch (e) {
      if (!isDataError(e)) throw e;
      for (const event of batch) {
        try {
          this.written.inc(await this.insertRows([event]));
        } catch (one) {
          if (!isDataError(one)) throw one;
          this.dropped.inc();
          this.logger.error({ err: one, event }, 'the database refused an audit event; it is dropped');
        }
      }
    }
  }

  private async insertRows(rows: AuditEvent[]): Promise<number> {
    const write = this.dataSource
      .createQueryBuilder()
      .insert()
      .into(AuditEvent)
      .values(rows as QueryDeepPartialEntity<AuditEvent>[])
      .orIgnore()
      .returning('id')
      .execute();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new AuditWriteTimeout(this.options.writeTimeoutMs)),
        this.options.writeTimeoutMs,
      );
    });
    // The abandoned write may still finish; its rejection must not surface as unhandled.
    write.catch(() => undefined);
    try {
      const result = await Promise.race([write, timeout]);
      return Array.isArray(result.raw) ? result.raw.length : rows.length;
    } finally {
      clearTimeout(timer);
    }
  }

  private enterOutage(err?: unknown): void {
    this.backoffMs = Math.min(this.options.retryMaxMs, Math.max(this.options.retryMinMs, this.backoffMs * 2));
    this.outageUntil = Date.now() + this.backoffMs;
    if (!this.degraded || err) {
      this.logger.warn(
        { err, pending: this.queue.length, retryInMs: this.backoffMs, spool: this.options.spoolDir },
        'audit events could not be stored; spooling them to disk and retrying',
      );
    }
    this.outage = true;
    this.degraded = true;
  }

  private afterDrain(): void {
    if (this.queue.length > 0) {
      // Nothing could take the events (no spool, or it is full): retry after the backoff.
      this.schedule(Math.max(this.backoffMs, this.options.retryMinMs));
    } else if (this.outage && this.spoolPendingBytes > 0) {
      this.schedule(Math.max(0, this.outageUntil - Date.now()));
    }
  }

  private updateGauges(): void {
    this.depth.set(this.queue.length);
    this.spoolBytes.set(this.spoolPendingBytes);
  }

  private releaseWaiters(): void {
    if (this.spoolPendingBytes > 0) return;
    const removed = this.queue.lastRemoved;
    const still: Waiter[] = [];
    for (const w of this.waiters) {
      if (w.seq <= removed) w.resolve(true);
      else still.push(w);
    }
    this.waiters = still;
  }
}

/** SQLSTATE class 22 (data exception) or 23 (integrity constraint): the row, not the connection. */
function isDataError(e: unknown): boolean {
  if (!(e instanceof QueryFailedError)) return false;
  const code = (e.driverError as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && (code.startsWith('22') || code.startsWith('23'));
}

/** The database did not finish an audit write in time (hung, not refused). */
export class AuditWriteTimeout extends Error {
  constructor(ms: number) {
    super(`the database did not finish an audit write within ${ms} ms`);
    this.name = 'AuditWriteTimeout';
  }
}
