import {
  BeforeApplicationShutdown,
  Inject,
  Injectable,
  OnApplicationBootstrap,
  Optional,
} from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import { AppLogger, Clock, MetricsService, RequestContext } from '@gatehouse/observability';
import { AuditBatchWriter } from './audit-batch.writer';
import { AuditEvent } from './audit-event.entity';
import { AuditEventInput } from './audit-event.input';
import { AuditOutageDetector } from './audit-outage.detector';
import { AuditQueue } from './audit-queue';
import { AUDIT_ROW_SINK, AuditRowSink } from './audit-row.sink';
import { AuditSpool, spoolLine } from './audit-spool';
import { AuditSpoolReplayer } from './audit-spool.replayer';
import { AuditMetrics } from './audit.metrics';

export { AuditWriteTimeout } from './audit-batch.writer';

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
/** The disk spool (an AuditSpool, or null for none); AuditModule provides it from the options. */
export const AUDIT_SPOOL = Symbol('AUDIT_SPOOL');

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
 * `INSERT ... ON CONFLICT (id) DO NOTHING` (AuditBatchWriter). When PostgreSQL is unreachable
 * (AuditOutageDetector) the writer moves the queue to an fsync'd append-only spool on disk and
 * probes the database with backoff; when it answers, the spool is replayed (AuditSpoolReplayer,
 * idempotent thanks to the event ids) and each segment deleted once its rows are committed. A
 * spool left by a crash is replayed at the next start.
 */
@Injectable()
export class AuditService implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly options: AuditWriterOptions;
  private readonly queue: AuditQueue<AuditEvent>;
  private readonly metrics: AuditMetrics;
  private readonly writer: AuditBatchWriter;
  private readonly outage: AuditOutageDetector;
  private readonly spool: AuditSpoolReplayer;
  private timer: NodeJS.Timeout | null = null;
  private timerDue = 0;
  private writing: Promise<void> | null = null;
  private waiters: Waiter[] = [];

  constructor(
    dataSource: DataSource,
    metrics: MetricsService,
    private readonly logger: AppLogger,
    @Optional() @Inject(AUDIT_WRITER_OPTIONS) options?: Partial<AuditWriterOptions>,
    @Optional() private readonly clock: Clock = new Clock(),
    @Optional() @Inject(AUDIT_SPOOL) spool: AuditSpool | null = null,
    @Optional() @Inject(AUDIT_ROW_SINK) sink: AuditRowSink | null = null,
  ) {
    this.options = { ...DEFAULT_AUDIT_WRITER_OPTIONS, ...options };
    this.queue = new AuditQueue(this.options.maxQueue);
    this.metrics = new AuditMetrics(metrics);
    this.writer = new AuditBatchWriter(dataSource, this.metrics, logger, this.options.writeTimeoutMs, sink);
    this.outage = new AuditOutageDetector(clock, logger, {
      retryMinMs: this.options.retryMinMs,
      retryMaxMs: this.options.retryMaxMs,
      spoolDir: spool?.options.dir ?? this.options.spoolDir,
    });
    this.spool = new AuditSpoolReplayer(spool, this.writer, this.metrics, logger, this.options.batchSize);
  }

  /** Replays a spool left by an earlier run, in the background. */
  onApplicationBootstrap(): void {
    if (!this.spool.resume()) return;
    this.updateGauges();
    this.schedule(0);
  }

  /** Events waiting in memory to be written. */
  get pending(): number {
    return this.queue.length;
  }

  /** Bytes waiting in the disk spool of this process. */
  get spoolPendingBytes(): number {
    return this.spool.pendingBytes;
  }

  /** Queues one event. Never throws and never waits for the database. */
  record(input: AuditEventInput): void {
    try {
      const event = this.toEvent(input);
      if (!this.queue.push(event)) {
        this.overflow(event);
        return;
      }
      this.metrics.depth.set(this.queue.length);
      this.schedule(this.queue.length >= this.options.batchSize ? 0 : this.options.flushIntervalMs);
    } catch (e) {
      this.metrics.dropped.inc();
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
      this.outage.probeNow();
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
    this.spool.release();
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
    const spool = this.spool.own();
    const batch = this.queue.peek(left);
    const lines = batch.map(spoolLine);
    if (spool && spool.hasRoomFor(lines)) {
      try {
        await spool.append(lines);
        this.queue.remove(batch.length);
        this.metrics.spooled.inc(batch.length);
        this.updateGauges();
        this.logger.warn(
          { spooled: batch.length, dir: this.spool.dir },
          'the database is unreachable at shutdown: audit events were spooled to disk and are stored at the next start',
        );
        return;
      } catch (e) {
        this.logger.error({ err: e }, 'audit events could not be spooled at shutdown');
      }
    }
    this.metrics.dropped.inc(left);
    this.logger.error(
      { lost: left },
      'audit events lost at shutdown: the database is unreachable and there is no usable spool',
    );
  }

  /** The memory queue is full: the event goes to the spool directly, else it is dropped. */
  private overflow(event: AuditEvent): void {
    const spool = this.spool.own();
    const line = spoolLine(event);
    if (spool && spool.hasRoomFor([line])) {
      try {
        spool.appendSync([line]);
        this.metrics.spooled.inc();
        this.updateGauges();
        this.schedule(0);
        return;
      } catch (e) {
        this.logger.error({ err: e }, 'audit event could not be spooled');
      }
    }
    this.metrics.dropped.inc();
  }

  private toEvent(input: AuditEventInput): AuditEvent {
    const ctx = RequestContext.current();
    const e = new AuditEvent();
    e.id = input.id ?? randomUUID();
    e.occurredAt = input.occurredAt ?? this.clock.date();
    e.requestId = input.requestId ?? ctx?.requestId ?? null;
    e.clientRequestId = input.clientRequestId ?? ctx?.clientRequestId ?? null;
    e.clientMemberTag = input.clientMemberTag ?? ctx?.clientMemberTag ?? null;
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
    const due = this.clock.now() + delayMs;
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
    await this.spool.sync();
    if (this.outage.mayProbe) {
      const replay = await this.spool.replay(() => this.updateGauges());
      if (replay === 'failed') this.outage.failed(this.queue.length);
      else this.outage.cleared();
      if (replay === 'replayed') {
        this.releaseWaiters();
        this.outage.recovered(this.queue.length);
      }
    }
    while (this.queue.length > 0) {
      const batch = this.queue.peek(this.options.batchSize);
      if (!this.outage.inOutage) {
        try {
          await this.writer.insert(batch);
          this.outage.recovered(this.queue.length);
          this.queue.remove(batch.length);
          this.updateGauges();
          this.releaseWaiters();
          continue;
        } catch (e) {
          this.outage.failed(this.queue.length, e);
        }
      }
      if (!(await this.spoolBatch(batch))) return;
    }
  }

  /** Writes a batch to the spool; false (batch kept in memory) when that is not possible. */
  private async spoolBatch(batch: AuditEvent[]): Promise<boolean> {
    const spool = this.spool.own();
    const lines = batch.map(spoolLine);
    if (!spool) return false;
    if (!spool.hasRoomFor(lines)) {
      this.logger.error(
        { spoolBytes: spool.bytes, maxBytes: spool.options.maxBytes, pending: this.queue.length },
        'the audit spool is full; keeping events in memory (they are dropped when that fills too)',
      );
      return false;
    }
    try {
      await spool.append(lines);
    } catch (e) {
      this.logger.error({ err: e, dir: this.spool.dir }, 'audit events could not be spooled');
      return false;
    }
    this.queue.remove(batch.length);
    this.metrics.spooled.inc(batch.length);
    this.updateGauges();
    return true;
  }

  private afterDrain(): void {
    if (this.queue.length > 0) {
      // Nothing could take the events (no spool, or it is full): retry after the backoff.
      this.schedule(Math.max(this.outage.backoffMs, this.options.retryMinMs));
    } else if (this.outage.inOutage && this.spoolPendingBytes > 0) {
      this.schedule(this.outage.msUntilProbe);
    }
  }

  private updateGauges(): void {
    this.metrics.depth.set(this.queue.length);
    this.metrics.spoolBytes.set(this.spoolPendingBytes);
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
