import type { ThrottlerStorage } from '@nestjs/throttler';
import type { RateLimitConfig } from '@gatehouse/config';
import type { RateLimitScope } from './rate-limit.constants';
import type { SlidingWindowCounters } from './sliding-window-counter.storage';

/** The counter key of one limit's bucket (the guard's and every reader's). */
export function rateLimitKey(scope: RateLimitScope, tracker: string): string {
  return `${scope}:${tracker}`;
}

/** Where a member stands against the per-member request limit (/v2/ and downloads). */
export interface MemberLimitState {
  limit: number;
  windowSeconds: number;
  /** Requests counted in the sliding window. */
  used: number;
  /** True when the member's next request would be refused with 429. */
  limited: boolean;
  /** Seconds until one more request fits (0 when not limited). */
  retryAfterSeconds: number;
}

/**
 * What the `v2_member` limit would answer the member's next request, without counting it. Null
 * when the limit is off (0) or the storage cannot be read without counting.
 */
export async function peekMemberLimit(
  storage: ThrottlerStorage,
  config: RateLimitConfig,
  memberId: string,
): Promise<MemberLimitState | null> {
  const limit = config.v2PerMember;
  const counters = storage as Partial<SlidingWindowCounters>;
  if (limit <= 0 || typeof counters.peek !== 'function') return null;
  const scope: RateLimitScope = 'v2_member';
  const r = await counters.peek(rateLimitKey(scope, memberId), config.windowSeconds * 1000, limit, scope);
  return {
    limit,
    windowSeconds: config.windowSeconds,
    // `peek` answers as if one more request came: the hits so far are one fewer.
    used: Math.max(0, r.totalHits - 1),
    limited: r.isBlocked,
    retryAfterSeconds: r.isBlocked ? r.timeToBlockExpire : 0,
  };
}
