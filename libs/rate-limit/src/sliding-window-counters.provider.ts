import { Module, Provider } from '@nestjs/common';
import { GatewayConfig } from '@gatehouse/config';
import { Clock } from '@gatehouse/observability';
import { RedisSlidingWindowStorage } from './redis-sliding-window.storage';
import { SlidingWindowCounters, SlidingWindowCounterStorage } from './sliding-window-counter.storage';

/** Keys tracked at most in memory; beyond it the oldest are dropped (memory stays bounded). */
const MAX_TRACKED_IN_MEMORY = 200_000;

/** The injection token of the process's one `SlidingWindowCounters`. */
export const SLIDING_WINDOW_COUNTERS = Symbol('SLIDING_WINDOW_COUNTERS');

/**
 * Where every rate-limit counter lives (the throttler's and the failed-login limiter's): Redis
 * when `REDIS_URL` is set, so replicas count together, else this process's memory.
 */
export function createSlidingWindowCounters(config: GatewayConfig, clock: Clock): SlidingWindowCounters {
  const url = config.rateLimit.redisUrl;
  if (url) return new RedisSlidingWindowStorage({ url, now: () => clock.now() });
  return new SlidingWindowCounterStorage(() => clock.now(), 60_000, MAX_TRACKED_IN_MEMORY);
}

const countersProvider: Provider = {
  provide: SLIDING_WINDOW_COUNTERS,
  inject: [GatewayConfig, Clock],
  useFactory: (config: GatewayConfig, clock: Clock) => createSlidingWindowCounters(config, clock),
};

/** Provides `SLIDING_WINDOW_COUNTERS`; imported by RateLimitModule and its ThrottlerModule. */
@Module({
  providers: [countersProvider],
  exports: [countersProvider],
})
export class SlidingWindowCountersModule {}
