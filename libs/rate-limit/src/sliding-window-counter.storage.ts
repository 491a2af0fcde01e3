import { OnModuleDestroy } from '@nestjs/common';
import type { ThrottlerStorage } from '@nestjs/throttler';

/** What @nestjs/throttler expects back from a storage. */
export interface ThrottlerStorageRecord {
  totalHits: number;
  timeToExpire: number;
  isBlocked: boolean;
  timeToBlockExpire: number;
}

/**
 * The counters the failed-login limiter asks: `SlidingWindowCounterStorage` in memory, or
 * `RedisSlidingWindowStorage` shared by the replicas. Both are also the throttler's storage.
 */
export interface SlidingWindowCounters extends ThrottlerStorage {
  /** Counts one hit unless the key is already at its limit. */
  hit(key: string, ttl: number, limit: number, throttlerName: string): Promise<ThrottlerStorageRecord>;
  /** What `hit` would answer, without counting anything. */
  peek(key: string, ttl: number, limit: number, throttlerName: string): Promise<ThrottlerStorageRecord>;
  /** Forgets a key's hits. */
  reset(key: string, throttlerName: string): Promise<void>;
}

interface Bucket {
  ttl: number;
  windowStart: number;
  current: number;
  previous: number;
}

/**
 * A sliding-window counter: two fixed windows per key, the previous one weighted by the share of
 * it the sliding window still covers. O(1) time and memory per request whatever the limit, unlike
 * the library's default storage, which keeps (and scans) one timestamp per hit — at the default
 * 3000 requests a minute per member that scan dominated the warm manifest path.
 *
 * A refused request is not counted, so a client that keeps retrying while limited is free again
 * as soon as its earlier requests age out, and Retry-After says when that is.
 */
export class SlidingWindowCounterStorage implements SlidingWindowCounters, OnModuleDestroy {
  private readonly buckets = new Map<string, Bucket>();
  private readonly sweeper: NodeJS.Timeout;

  /**
   * @param maxKeys keys held at most; beyond it the oldest key is dropped, so a
   *   client inventing keys (IPv6 addresses, usernames) cannot grow memory without bound.
   */
  constructor(
    private readonly now: () => number = Date.now,
    sweepIntervalMs = 60_000,
    private readonly maxKeys = Number.POSITIVE_INFINITY,
  ) {
    this.sweeper = setInterval(() => this.sweep(), sweepIntervalMs);
    this.sweeper.unref();
  }

  async increment(
    key: string,
    ttl: number,
    limit: number,
    _blockDuration: number,
    throttlerName: string,
  ): Promise<ThrottlerStorageRecord> {
    return this.hitNow(key, ttl, limit, throttlerName);
  }

  async hit(key: string, ttl: number, limit: number, throttlerName: string): Promise<ThrottlerStorageRecord> {
    return this.hitNow(key, ttl, limit, throttlerName);
  }

  async peek(
    key: string,
    ttl: number,
    limit: number,
    throttlerName: string,
  ): Promise<ThrottlerStorageRecord> {
    return this.peekNow(key, ttl, limit, throttlerName);
  }

  async reset(key: string, throttlerName: string): Promise<void> {
    this.resetNow(key, throttlerName);
  }

  /** `hit` without the promise. */
  hitNow(key: string, ttl: number, limit: number, throttlerName: string): ThrottlerStorageRecord {
    return this.evaluate(key, ttl, limit, throttlerName, true);
  }

  /** `peek` without the promise. */
  peekNow(key: string, ttl: number, limit: number, throttlerName: string): ThrottlerStorageRecord {
    return this.evaluate(key, ttl, limit, throttlerName, false);
  }

  /** `reset` without the promise. */
  resetNow(key: string, throttlerName: string): void {
    this.buckets.delete(`${throttlerName}\u0000${key}`);
  }

  private evaluate(
    key: string,
    ttl: number,
    limit: number,
    throttlerName: string,
    count: boolean,
  ): ThrottlerStorageRecord {
    const now = this.now();
    const id = `${throttlerName}\u0000${key}`;
    const windowStart = now - (now % ttl);
    let bucket = this.buckets.get(id);
    if (!bucket) {
      bucket = { ttl, windowStart, current: 0, previous: 0 };
      if (count) this.insert(id, bucket);
    } else if (bucket.windowStart !== windowStart || bucket.ttl !== ttl) {
      bucket.previous = windowStart - bucket.windowStart === ttl ? bucket.current : 0;
      bucket.current = 0;
      bucket.windowStart = windowStart;
      bucket.ttl = ttl;
    }
    const verdict = judgeWindow(bucket.current, bucket.previous, now - windowStart, ttl, limit);
    if (count && !verdict.isBlocked) bucket.current++;
    return verdict;
  }

  private insert(id: string, bucket: Bucket): void {
    // Map order is insertion order: the first key is the oldest.
    if (this.buckets.size >= this.maxKeys) this.buckets.delete(this.buckets.keys().next().value as string);
    this.buckets.set(id, bucket);
  }

  /** Forgets every key. */
  clear(): void {
    this.buckets.clear();
  }

  get size(): number {
    return this.buckets.size;
  }

  onModuleDestroy(): void {
    clearInterval(this.sweeper);
  }

  /** A key idle for two windows holds nothing that still counts. */
  sweep(): void {
    const now = this.now();
    for (const [id, bucket] of this.buckets) {
      if (now - bucket.windowStart >= 2 * bucket.ttl) this.buckets.delete(id);
    }
  }
}

/**
 * The answer for a key whose current window (started `elapsed` ms ago) holds `current` hits and
 * whose previous window held `previous`: blocked when one more would exceed `limit`. The one
 * formula of the sliding window, shared by the in-memory and the Redis storage.
 */
export function judgeWindow(
  current: number,
  previous: number,
  elapsed: number,
  ttl: number,
  limit: number,
): ThrottlerStorageRecord {
  const estimate = previous * (1 - elapsed / ttl) + current;
  if (estimate + 1 > limit) {
    return {
      totalHits: Math.floor(estimate) + 1,
      timeToExpire: Math.ceil((ttl - elapsed) / 1000),
      isBlocked: true,
      // Never more than one window: the approximation can weigh old hits a little longer than
      // a per-hit log would; a client told "one window" and still refused is told again.
      timeToBlockExpire: Math.max(
        1,
        Math.ceil(Math.min(ttl, waitMs({ current, previous }, elapsed, ttl, limit)) / 1000),
      ),
    };
  }
  return {
    totalHits: Math.ceil(estimate + 1),
    timeToExpire: Math.ceil((ttl - elapsed) / 1000),
    isBlocked: false,
    timeToBlockExpire: 0,
  };
}

/** Time until one more request fits under the limit. */
function waitMs(
  bucket: { current: number; previous: number },
  elapsed: number,
  ttl: number,
  limit: number,
): number {
  const room = limit - 1 - bucket.current;
  if (room >= 0 && bucket.previous > 0) {
    // Still in this window: wait until the previous window's weight has decayed enough.
    const t = ttl * (1 - room / bucket.previous) - elapsed;
    if (t <= ttl - elapsed) return Math.max(0, t);
  }
  // In the next window this window's count decays in turn.
  const untilNext = ttl - elapsed;
  if (bucket.current <= limit - 1) return untilNext;
  return untilNext + ttl * (1 - (limit - 1) / bucket.current);
}
