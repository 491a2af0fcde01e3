import { Injectable } from '@nestjs/common';
import { Counter } from 'prom-client';
import { AppLogger, Clock, MetricsService } from '@gatehouse/observability';

/** While the storage keeps failing, one log line per this interval (the metric counts every one). */
const LOG_INTERVAL_MS = 60_000;

/**
 * Counts and reports limiter failures. One per process, shared by every guard instance (Nest
 * builds a guard per module that uses it), so an outage is one log line a minute, not one per
 * request per module.
 */
@Injectable()
export class RateLimitFailures {
  private readonly failures: Counter;
  private lastLogMs = Number.NEGATIVE_INFINITY;
  private sinceLog = 0;

  constructor(
    private readonly logger: AppLogger,
    private readonly clock: Clock,
    metrics: MetricsService,
  ) {
    this.failures = metrics.counter(
      'gatehouse_rate_limit_storage_failures_total',
      'Rate-limit checks that failed (storage error) and let the request through',
    );
  }

  record(error: unknown): void {
    this.failures.inc();
    this.sinceLog += 1;
    const now = this.clock.now();
    if (now - this.lastLogMs < LOG_INTERVAL_MS) return;
    this.logger.error(
      { err: error, failures: this.sinceLog },
      'rate limiter storage failed: requests are let through unlimited (fail open) until it recovers',
    );
    this.lastLogMs = now;
    this.sinceLog = 0;
  }
}
