import { OnModuleDestroy } from '@nestjs/common';
import Redis from 'ioredis';
import { judgeWindow, SlidingWindowCounters, ThrottlerStorageRecord } from './sliding-window-counter.storage';

/**
 * One key's two windows, atomically: rolls the bucket to the window of `now`, and counts one hit
 * unless one more would exceed the limit (the same estimate as `judgeWindow`: the previous
 * window weighted by the share the sliding window still covers, plus the current one). O(1): one
 * small hash per key, expiring two windows after its last hit. Answers the counts before the hit
 * and the elapsed time, integers (Redis truncates Lua numbers), so the caller builds the record
 * with the one formula.
 *
 * KEYS[1] the bucket; ARGV now (ms), ttl (ms), limit, count (1 or 0).
 */
const SLIDING_WINDOW_LUA = `
local now = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local count = ARGV[4] == '1'
local ws = now - (now % ttl)
local b = redis.call('HMGET', KEYS[1], 'ws', 'ttl', 'cur', 'prev')
local bws = tonumber(b[1])
local cur = 0
local prev = 0
if bws ~= nil then
  cur = tonumber(b[3]) or 0
  prev = tonumber(b[4]) or 0
  if bws ~= ws or tonumber(b[2]) ~= ttl then
    if ws - bws == ttl then prev = cur else prev = 0 end
    cur = 0
  end
end
local elapsed = now - ws
local blocked = prev * (1 - elapsed / ttl) + cur + 1 > limit
if count and not blocked then
  redis.call('HSET', KEYS[1], 'ws', ws, 'ttl', ttl, 'cur', cur + 1, 'prev', prev)
  redis.call('PEXPIRE', KEYS[1], 2 * ttl)
end
return { cur, prev, elapsed }
`;

type SlidingWindowRedis = Redis & {
  gatehouseSlidingWindow(
    key: string,
    now: number,
    ttl: number,
    limit: number,
    count: 0 | 1,
  ): Promise<number[]>;
};

export interface RedisSlidingWindowOptions {
  url: string;
  /** Prefix of every key, so one Redis can serve several deployments. */
  keyPrefix?: string;
  now?: () => number;
  /** A command not answered in this time fails (and the limit fails open). */
  commandTimeoutMs?: number;
}

/**
 * The sliding-window counters in Redis, shared by every replica using the same `REDIS_URL`: the
 * throttler's storage and the failed-login limiter's counters, with the semantics of
 * `SlidingWindowCounterStorage`. Nothing waits for Redis: no offline queue, one attempt per
 * command, short timeouts, so when Redis is down every call fails at once and its caller fails
 * open (RateLimitGuard, FailedLoginLimiter; counted by RateLimitFailures). The client reconnects
 * in the background.
 */
export class RedisSlidingWindowStorage implements SlidingWindowCounters, OnModuleDestroy {
  private readonly redis: SlidingWindowRedis;
  private readonly prefix: string;
  private readonly now: () => number;

  constructor(options: RedisSlidingWindowOptions) {
    this.prefix = options.keyPrefix ?? 'gatehouse:rl:';
    this.now = options.now ?? Date.now;
    this.redis = new Redis(options.url, {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      connectTimeout: 1_000,
      commandTimeout: options.commandTimeoutMs ?? 500,
      retryStrategy: (attempt) => Math.min(attempt * 200, 2_000),
      lazyConnect: false,
    }) as SlidingWindowRedis;
    // Connection errors surface as failed commands (counted there); an unhandled 'error' event
    // would only print a stack per reconnect attempt.
    this.redis.on('error', () => undefined);
    this.redis.defineCommand('gatehouseSlidingWindow', { numberOfKeys: 1, lua: SLIDING_WINDOW_LUA });
  }

  /** Resolves once connected (or rejects after `timeoutMs`); start-up uses it, requests never wait. */
  async ready(timeoutMs = 2_000): Promise<void> {
    if (this.redis.status === 'ready') return;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.redis.off('ready', onReady);
        reject(new Error(`Redis not reachable within ${timeoutMs} ms`));
      }, timeoutMs);
      const onReady = () => {
        clearTimeout(timer);
        resolve();
      };
      this.redis.once('ready', onReady);
    });
  }

  async increment(
    key: string,
    ttl: number,
    limit: number,
    _blockDuration: number,
    throttlerName: string,
  ): Promise<ThrottlerStorageRecord> {
    return this.hit(key, ttl, limit, throttlerName);
  }

  hit(key: string, ttl: number, limit: number, throttlerName: string): Promise<ThrottlerStorageRecord> {
    return this.evaluate(key, ttl, limit, throttlerName, 1);
  }

  peek(key: string, ttl: number, limit: number, throttlerName: string): Promise<ThrottlerStorageRecord> {
    return this.evaluate(key, ttl, limit, throttlerName, 0);
  }

  async reset(key: string, throttlerName: string): Promise<void> {
    await this.redis.del(this.keyOf(key, throttlerName));
  }

  async onModuleDestroy(): Promise<void> {
    this.redis.disconnect();
  }

  private async evaluate(
    key: string,
    ttl: number,
    limit: number,
    throttlerName: string,
    count: 0 | 1,
  ): Promise<ThrottlerStorageRecord> {
    const [current, previous, elapsed] = await this.redis.gatehouseSlidingWindow(
      this.keyOf(key, throttlerName),
      this.now(),
      ttl,
      limit,
      count,
    );
    return judgeWindow(current, previous, elapsed, ttl, limit);
  }

  private keyOf(key: string, throttlerName: string): string {
    return `${this.prefix}${throttlerName}:${key}`;
  }
}
