import { Module, Provider } from '@nestjs/common';
import { GatewayConfig } from '@gatehouse/config';
import { AppLogger, Clock, MetricsService } from '@gatehouse/observability';
import { RedisSlidingWindowStorage } from './redis-sliding-window.storage';
import { CounterFallbackReport, SharedOrLocalCounters } from './shared-or-local-counters';
import { SlidingWindowCounters, SlidingWindowCounterStorage } from './sliding-window-counter.storage';

/** Keys tracked at most in memory; beyond it the oldest are dropped (memory stays bounded). */
const MAX_TRACKED_IN_MEMORY = 200_000;

/** The injection token of the process's one `SlidingWindowCounters`. */
export const SLIDING_WINDOW_COUNTERS = Symbol('SLIDING_WINDOW_COUNTERS');

/**
 * Where every rate-limit counter lives (the throttler's and the failed-login limiter's): Redis
 * when `REDIS_URL` is set, so replicas count together, with this process's memory behind it while
 * Redis is away (SharedOrLocalCounters: never unlimited); else this process's memory.
 */
export function createSlidingWindowCounters(
  config: GatewayConfig,
  clock: Clock,
  metrics: MetricsService,
  logger: AppLogger,
): SlidingWindowCounters {
  const now = () => clock.now();
  const local = new SlidingWindowCounterStorage(now, 60_000, MAX_TRACKED_IN_MEMORY);
  const url = config.rateLimit.redisUrl;
  if (!url) return local;
  const report = new CounterFallbackReport(metrics, logger, now);
  return new SharedOrLocalCounters(new RedisSlidingWindowStorage({ url, now }), local, report, now);
}

const countersProvider: Provider = {
  provide: SLIDING_WINDOW_COUNTERS,
  inject: [GatewayConfig, Clock, MetricsService, AppLogger],
  useFactory: (config: GatewayConfig, clock: Clock, metrics: MetricsService, logger: AppLogger) =>
    createSlidingWindowCounters(config, clock, metrics, logger),
};

/** Provides `SLIDING_WINDOW_COUNTERS`; imported by RateLimitModule and its ThrottlerModule. */
@Module({
  providers: [countersProvider],
  exports: [countersProvider],
})
export class SlidingWindowCountersModule {}
