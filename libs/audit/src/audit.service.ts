import { BeforeApplicationShutdown, Inject, Injectable, Optional } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { Counter, Gauge } from 'prom-client';
import { DataSource } from 'typeorm';
import { QueryDeepPartialEntity } from 'typeorm/query-builder/QueryPartialEntity';
import { AppLogger, MetricsService, RequestContext } from '@gatehouse/observability';
import { AuditEvent } from './audit-event.entity';
import { AuditEventInput } from './audit-event.input';
import { AuditQueue } from './audit-queue';

export interface AuditWriterOptions {
  /** Longest an event waits in memory before a write starts. */
  flushIntervalMs: number;
  /** Events per INSERT; a full batch is written at once. */
  batchSize: number;
  /** Events held while the database is unreachable; beyond this they are dropped and counted. */
  maxQueue: number;
  retryMinMs: number;
  retryMaxMs: number;
  /** How long shutdown waits for the queue to drain. */
  shutdownTimeoutMs: number;
}

export const AUDIT_WRITER_OPTIONS = Symbol('AUDIT_WRITER_OPTIONS');

export const DEFAULT_AUDIT_WRITER_OPTIONS: AuditWriterOptions = {
  flushIntervalMs: 200,
  batchSize: 500,
  maxQueue: 100_000,
  retryMinMs: 200,
  retryMaxMs: 10_000,
  shutdownTimeoutMs: 10_000,
};

type Waiter = { seq: number; resolve: (done: boolean) => void };

/**
 * Records audit events without ever blocking or failing the request that reports them: `record`
 * only queues in memory; a background writer stores batches with one multi-row INSERT and retries
 * with backoff while the database is unreachable.
 */
@Injectable()
export class AuditService implements BeforeApplicationShutdown {
  private readonly options: AuditWriterOptions;
  private readonly queue: AuditQueue<AuditEvent>;
  private timer: NodeJS.Timeout | null = null;
  private timerDue = 0;
  private writing: Promise<void> | null = null;
  private backoffMs = 0;
  private waiters: Waiter[] = [];
  private readonly dropped: Counter;
  private readonly written: Counter;
  private readonly depth: Gauge;

  constructor(
    private readonly dataSource: DataSource,
    metrics: MetricsService,
    private readonly logger: AppLogger,
    @Optional() @Inject(AUDIT_WRITER_OPTIONS) options?: Partial<AuditWriterOptions>,
  ) {
    this.options = { ...DEFAULT_AUDIT_WRITER_OPTIONS, ...options };
    this.queue = new AuditQueue(this.options.maxQueue);
    this.dropped = metrics.counter(
      'gatehouse_audit_events_dropped_total',
      'Audit events lost because the in-memory queue was full (database unreachable for long)',
    );
    this.written = metrics.counter(
      'gatehouse_audit_events_written_total',
      'Audit events stored in the database',
    );
    this.depth = metrics.gauge('gatehouse_audit_queue_depth', 'Audit events waiting to be stored');
  }

  /** Events waiting to be written. */
  get pending(): number {
    return this.queue.length;
  }

  /** Queues one event. Never throws and never waits for the database. */
  record(input: AuditEventInput): void {
    try {
      if (!this.queue.push(this.toEvent(input))) {
        this.dropped.inc();
        return;
      }
      this.depth.set(this.queue.length);
      if (this.backoffMs > 0) return;
      this.schedule(this.queue.length >= this.options.batchSize ? 0 : this.options.flushIntervalMs);
    } catch (e) {
      this.dropped.inc();
      this.logger.error({ err: e, action: input?.action }, 'audit event could not be queued');
    }
  }

  /**
   * Resolves true once every event queued before the call is stored, or false when `timeoutMs`
   * passes first (the events stay queued).
   */
  flush(timeoutMs = Number.POSITIVE_INFINITY): Promise<boolean> {
    const seq = this.queue.lastEnqueued;
    if (this.queue.lastRemoved >= seq) return Promise.resolve(true);
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
      // An explicit flush retries now instead of waiting out the backoff.
      this.schedule(0);
    });
  }

  async beforeApplicationShutdown(): Promise<void> {
    if (this.queue.length === 0) return;
    const done = await this.flush(this.options.shutdownTimeoutMs);
    if (!done) {
      this.logger.error(
        { pending: this.queue.length },
        'audit events could not be stored before shutdown: the database is unreachable',
      );
    }
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private toEvent(input: AuditEventInput): AuditEvent {
    const ctx = RequestContext.current();
    const e = new AuditEvent();
    e.id = input.id ?? randomUUID();
    e.occurredAt = input.occurredAt ?? new Date();
    e.requestId = input.requestId ?? ctx?.requestId ?? null;
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
      this.writing = this.drain().finally(() => {
        this.writing = null;
        this.afterDrain();
      });
    }, delayMs);
    // Pending audit events must not keep a finished process alive; shutdown flushes them.
    this.timer.unref();
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue.peek(this.options.batchSize);
      try {
        await this.dataSource
          .createQueryBuilder()
          .insert()
          .into(AuditEvent)
          .values(batch as QueryDeepPartialEntity<AuditEvent>[])
          .orIgnore()
          .execute();
      } catch (e) {
        this.backoffMs = Math.min(
          this.options.retryMaxMs,
          Math.max(this.options.retryMinMs, this.backoffMs * 2),
        );
        this.logger.warn(
          { err: e, pending: this.queue.length, retryInMs: this.backoffMs },
          'audit events could not be stored; keeping them queued and retrying',
        );
        return;
      }
      if (this.backoffMs > 0) this.logger.info({ pending: this.queue.length }, 'audit writes recovered');
      this.backoffMs = 0;
      this.queue.remove(batch.length);
      this.written.inc(batch.length);
      this.depth.set(this.queue.length);
      this.releaseWaiters();
    }
  }

  private afterDrain(): void {
    if (this.queue.length === 0) return;
    // Failed: retry after the backoff. A waiting flush() keeps the retries coming.
    this.schedule(this.backoffMs > 0 ? this.backoffMs : 0);
  }

  private releaseWaiters(): void {
    const removed = this.queue.lastRemoved;
    const still: Waiter[] = [];
    for (const w of this.waiters) {
      if (w.seq <= removed) w.resolve(true);
      else still.push(w);
    }
    this.waiters = still;
  }
}
