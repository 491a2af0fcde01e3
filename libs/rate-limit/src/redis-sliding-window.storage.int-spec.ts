import { GatewayConfig } from '@gatehouse/config';
import { createCapturingLogger, ManualClock, MetricsService } from '@gatehouse/observability';
import { startTestRedis, TestRedis } from '@gatehouse/testing/redis';
import { FailedLoginLimiter } from './failed-login.limiter';
import { RateLimitFailures } from './rate-limit-failures.service';
import { RedisSlidingWindowStorage } from './redis-sliding-window.storage';
import { SlidingWindowCounterStorage } from './sliding-window-counter.storage';

/** The Redis counters against a real redis-server: the in-memory semantics, shared, failing open. */
describe('RedisSlidingWindowStorage', () => {
  let redis: TestRedis;
  const opened: RedisSlidingWindowStorage[] = [];
  let prefix = 0;
  const clock = new ManualClock(6_000_000);

  function storage(keyPrefix = `t${++prefix}:`): RedisSlidingWindowStorage {
    const s = new RedisSlidingWindowStorage({ url: redis.url, keyPrefix, now: () => clock.now() });
    opened.push(s);
    return s;
  }

  beforeAll(async () => {
    redis = await startTestRedis();
  });

  afterAll(async () => {
    for (const s of opened) await s.onModuleDestroy();
    await redis?.stop();
  });

  it('answers exactly what the in-memory counter answers, hit by hit, across windows', async () => {
    const ttl = 10_000;
    const memory = new SlidingWindowCounterStorage(() => clock.now());
    const shared = storage();
    await shared.ready();
    // A fixed pseudo-random walk: bursts and pauses over five windows, two keys, limit 7.
    let seed = 42;
    const next = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
    for (let i = 0; i < 300; i++) {
      clock.advance(Math.floor(next() * 400));
      const key = next() < 0.7 ? 'a' : 'b';
      const op = next() < 0.85 ? 'hit' : 'peek';
      const expected = op === 'hit' ? memory.hitNow(key, ttl, 7, 'x') : memory.peekNow(key, ttl, 7, 'x');
      expect({ i, ...(await shared[op](key, ttl, 7, 'x')) }).toEqual({ i, ...expected });
    }
    await shared.reset('a', 'x');
    memory.resetNow('a', 'x');
    expect(await shared.peek('a', ttl, 7, 'x')).toEqual(memory.peekNow('a', ttl, 7, 'x'));
    memory.onModuleDestroy();
  });

  it('counts two replicas together: 60 requests at a limit of 40 let exactly 40 through', async () => {
    const keyPrefix = `shared${++prefix}:`;
    const one = storage(keyPrefix);
    const two = storage(keyPrefix);
    await Promise.all([one.ready(), two.ready()]);
    const answers = await Promise.all(
      Array.from({ length: 60 }, (_, i) =>
        (i % 2 ? one : two).increment('member', 60_000, 40, 0, 'v2_member'),
      ),
    );
    expect(answers.filter((a) => !a.isBlocked)).toHaveLength(40);
  });

  it('when Redis is down, failed logins fail open, counted and logged once, and count again once it is back', async () => {
    const config = {
      auth: { failedLoginsPerIp: 100, failedLoginsPerUsername: 2, failedLoginWindowSeconds: 60 },
    } as unknown as GatewayConfig;
    const metrics = new MetricsService();
    const log = createCapturingLogger();
    const limiter = new FailedLoginLimiter(
      config,
      metrics,
      storage(),
      new RateLimitFailures(log.logger, clock, metrics),
    );
    const counters = opened[opened.length - 1];
    await counters.ready();
    await limiter.recordFailure('10.0.0.1', 'dave');
    await limiter.recordFailure('10.0.0.1', 'dave');
    expect((await limiter.check('10.0.0.1', 'dave')).limited).toBe(true);

    await redis.kill();
    expect(await limiter.check('10.0.0.1', 'dave')).toEqual({ limited: false });
    await limiter.recordFailure('10.0.0.1', 'dave');
    expect(
      await metrics.registry.getSingleMetricAsString('gatehouse_rate_limit_storage_failures_total'),
    ).toContain('gatehouse_rate_limit_storage_failures_total 2');
    expect(log.lines().filter((r) => /fail open/.test(String(r.msg)))).toHaveLength(1);

    await redis.start();
    await counters.ready(5_000);
    // An empty Redis (in memory only) after the restart: the windows start again.
    await limiter.recordFailure('10.0.0.1', 'erin');
    await limiter.recordFailure('10.0.0.1', 'erin');
    expect((await limiter.check('10.0.0.1', 'erin')).limited).toBe(true);
  });
});
