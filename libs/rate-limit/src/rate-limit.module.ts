import { DynamicModule, Global, Module } from '@nestjs/common';
import { ThrottlerModule, ThrottlerModuleOptions, ThrottlerStorage } from '@nestjs/throttler';
import { LoginRateLimiter } from '@gatehouse/auth';
import { GatewayConfig, RateLimitConfig } from '@gatehouse/config';
import { BlobStreamSlotGuard } from './blob-stream-slot.guard';
import { BlobStreamSlots } from './blob-stream-slots';
import { FailedLoginLimiter } from './failed-login.limiter';
import { RateLimitScope } from './rate-limit.constants';
import { RateLimitFailures } from './rate-limit-failures.service';
import { RateLimitGuard } from './rate-limit.guard';
import { SLIDING_WINDOW_COUNTERS, SlidingWindowCountersModule } from './sliding-window-counters.provider';

export interface RateLimitModuleOptions {
  /**
   * Where the throttler's counters live, for tests. Default: `SLIDING_WINDOW_COUNTERS` (Redis
   * when `REDIS_URL` is set, else memory), which the failed-login limiter uses too.
   */
  storage?: ThrottlerStorage;
}

/** The throttlers from the configuration; a limit of 0 disables that throttler. */
export function rateLimitThrottlerOptions(
  config: RateLimitConfig,
  storage?: ThrottlerStorage,
): ThrottlerModuleOptions {
  const ttl = config.windowSeconds * 1000;
  const limits: Record<RateLimitScope, number> = {
    v2_member: config.v2PerMember,
    anonymous_ip: config.anonymousPerIp,
    token_ip: config.tokenPerIp,
  };
  return {
    // blockDuration 0: no extra penalty; the storage counts hits only while under the limit, so
    // a client that keeps retrying while limited is free again as soon as its hits age out.
    throttlers: Object.entries(limits).map(([name, limit]) => ({ name, limit, ttl, blockDuration: 0 })),
    // Retry-After travels on the 429 itself; X-RateLimit-* on every blob response is noise.
    setHeaders: false,
    storage,
  };
}

/**
 * The request limits (RateLimitGuard, applied with @RateLimited on a controller) and the
 * failed-login limits the token endpoint asks (`LoginRateLimiter`, implemented by FailedLoginLimiter).
 */
@Global()
@Module({})
export class RateLimitModule {
  static forRoot(options: RateLimitModuleOptions = {}): DynamicModule {
    return {
      module: RateLimitModule,
      imports: [
        SlidingWindowCountersModule,
        ThrottlerModule.forRootAsync({
          imports: [SlidingWindowCountersModule],
          inject: [GatewayConfig, SLIDING_WINDOW_COUNTERS],
          useFactory: (config: GatewayConfig, counters: ThrottlerStorage) =>
            rateLimitThrottlerOptions(config.rateLimit, options.storage ?? counters),
        }),
      ],
      providers: [
        RateLimitFailures,
        RateLimitGuard,
        FailedLoginLimiter,
        { provide: LoginRateLimiter, useExisting: FailedLoginLimiter },
        BlobStreamSlots,
        BlobStreamSlotGuard,
      ],
      exports: [
        RateLimitFailures,
        RateLimitGuard,
        FailedLoginLimiter,
        LoginRateLimiter,
        BlobStreamSlots,
        BlobStreamSlotGuard,
      ],
    };
  }
}
