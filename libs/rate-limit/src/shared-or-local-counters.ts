import { OnModuleDestroy } from '@nestjs/common';
import { Counter, Gauge } from 'prom-client';
import { AppLogger, MetricsService } from '@gatehouse/observability';
import {
  SlidingWindowCounters,
  SlidingWindowCounterStorage,
  ThrottlerStorageRecord,
} from './sliding-window-counter.storage';

/** While the shared counters are away, one log line per this interval (the metric counts every check). */
const LOG_INTERVAL_MS = 60_000;
/** After a failure the shared counters are asked again only after this pause, so a stalled Redis costs one timeout a second, not one per request. */
const RETRY_SHARED_AFTER_MS = 1_000;

/** What the fallback reports: a metric and a log line a minute. */
export class CounterFallbackReport {
  private readonly fallbacks: Counter;
  private readonly shared: Gauge;
  private lastLogMs = Number.NEGATIVE_INFINITY;
  private sinceLog = 0;

  constructor(
    metrics: MetricsService,
    private readonly logger: AppLogger,
    private readonly now: () => number,
  ) {
    this.fallbacks = metrics.counter(
      'gatehouse_rate_limit_local_fallback_total',
      'Rate-limit checks counted in this replica because the shared counters (Redis) failed',
    );
    this.shared = metrics.gauge(
      'gatehouse_rate_limit_counters_shared',
      '1 while rate limits count in the shared counters (Redis), 0 while this replica counts alone',
    );
    this.shared.set(1);
  }

  fellBack(error: unknown): void {
    this.fallbacks.inc();
    this.shared.set(0);
    this.sinceLog += 1;
    const now = this.now();
    if (now - this.lastLogMs < LOG_INTERVAL_MS) return;
    this.logger.error(
      { err: error, checks: this.sinceLog },
      'rate-limit counters in Redis unreachable: limits count per replica in local memory until it returns',
    );
    this.lastLogMs = now;
    this.sinceLog = 0;
  }

  recovered(): void {
    this.shared.set(1);
    this.logger.info('rate-limit counters in Redis reachable again: limits count across replicas');
    this.lastLogMs = Number.NEGATIVE_INFINITY;
    this.sinceLog = 0;
  }
}

/**
 * The shared counters (Redis, every replica counting together) with this replica's own counters
 * behind them: when a shared call fails, the same call is answered from local memory, so a limit
 * is never lifted, only counted per replica (n replicas admit up to n times a limit while Redis is
 * away). The shared counters are asked again a second after a failure; the first success switches
 * back (the local counts are then forgotten: the shared window is the truth again).
 */
export class SharedOrLocalCounters implements SlidingWindowCounters, OnModuleDestroy {
  private localSince: number | null = null;
  private retryAt = Number.NEGATIVE_INFINITY;
  private lastError: unknown = null;

  constructor(
    private readonly shared: SlidingWindowCounters & { onModuleDestroy?(): unknown },
    private readonly local: SlidingWindowCounterStorage,
    private readonly report: CounterFallbackReport,
    private readonly now: () => number,
  ) {}

  /** True while this replica counts alone. */
  get isLocal(): boolean {
    return this.localSince !== null;
  }

  increment(
    key: string,
    ttl: number,
    limit: number,
    blockDuration: number,
    throttlerName: string,
  ): Promise<ThrottlerStorageRecord> {
    return this.either(
      () => this.shared.increment(key, ttl, limit, blockDuration, throttlerName),
      () => this.local.hitNow(key, ttl, limit, throttlerName),
    );
  }

  hit(key: string, ttl: number, limit: number, throttlerName: string): Promise<ThrottlerStorageRecord> {
    return this.either(
      () => this.shared.hit(key, ttl, limit, throttlerName),
      () => this.local.hitNow(key, ttl, limit, throttlerName),
    );
  }

  peek(key: string, ttl: number, limit: number, throttlerName: string): Promise<ThrottlerStorageRecord> {
    return this.either(
      () => this.shared.peek(key, ttl, limit, throttlerName),
      () => this.local.peekNow(key, ttl, limit, throttlerName),
    );
  }

  reset(key: string, throttlerName: string): Promise<void> {
    return this.either(
      () => this.shared.reset(key, throttlerName),
      () => this.local.resetNow(key, throttlerName),
    );
  }

  async onModuleDestroy(): Promise<void> {
    this.local.onModuleDestroy();
    await this.shared.onModuleDestroy?.();
  }

  private async either<T>(shared: () => Promise<T>, local: () => T): Promise<T> {
    if (this.localSince !== null && this.now() < this.retryAt) {
      this.report.fellBack(this.lastError);
      return local();
    }
    try {
      const answer = await shared();
      if (this.localSince !== null) {
        this.localSince = null;
        this.resetLocal();
        this.report.recovered();
      }
      return answer;
    } catch (error) {
      if (this.localSince === null) this.localSince = this.now();
      this.retryAt = this.now() + RETRY_SHARED_AFTER_MS;
      this.lastError = error;
      this.report.fellBack(error);
      return local();
    }
  }

  private resetLocal(): void {
    // The next outage starts from empty windows, as a replica does after a restart.
    this.local.clear();
  }
}
