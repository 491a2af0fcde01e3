import { GatewayConfig } from '@gatehouse/config';
import { createCapturingLogger, ManualClock, MetricsService } from '@gatehouse/observability';
import { FailedLoginLimiter } from './failed-login.limiter';
import { RateLimitFailures } from './rate-limit-failures.service';
import { createSlidingWindowCounters } from './sliding-window-counters.provider';

function limiter(clock: ManualClock, perIp = 5, perPair = 3, windowSeconds = 60) {
  const config = {
    auth: {
      failedLoginsPerIp: perIp,
      failedLoginsPerUsername: perPair,
      failedLoginWindowSeconds: windowSeconds,
    },
  };
  const gateway = { ...config, rateLimit: { redisUrl: null } } as unknown as GatewayConfig;
  const metrics = new MetricsService();
  const { logger } = createCapturingLogger();
  const failures = new RateLimitFailures(logger, clock, metrics);
  const counters = createSlidingWindowCounters(gateway, clock, metrics, logger);
  const l = new FailedLoginLimiter(gateway, metrics, counters, failures);
  return { l, metrics };
}

describe('FailedLoginLimiter', () => {
  // A window boundary, so the sliding counter's arithmetic is easy to follow.
  const start = 6_000_000;
  let clock: ManualClock;
  beforeEach(() => (clock = new ManualClock(start)));

  it('limits a username from the address that failed, never the same username from another', async () => {
    const { l } = limiter(clock);
    for (let i = 0; i < 3; i++) {
      expect((await l.check('10.0.0.5', 'dave')).limited).toBe(false);
      await l.recordFailure('10.0.0.5', 'dave');
    }
    expect(await l.check('10.0.0.5', 'DAVE')).toEqual({
      limited: true,
      key: 'username_ip',
      retryAfterSeconds: 60,
    });
    // The member's own address is not refused by a stranger's failures.
    expect(await l.check('10.0.0.1', 'dave')).toEqual({ limited: false });
    // Nor is another username from the failing address, while its IP budget lasts.
    expect(await l.check('10.0.0.5', 'erin')).toEqual({ limited: false });
  });

  it('limits an address across usernames', async () => {
    const { l, metrics } = limiter(clock);
    for (let i = 0; i < 5; i++) await l.recordFailure('10.0.0.9', `user${i}`);
    expect(await l.check('10.0.0.9', 'someone-else')).toEqual({
      limited: true,
      key: 'ip',
      retryAfterSeconds: 60,
    });
    expect((await l.check('10.0.0.8', 'someone-else')).limited).toBe(false);
    expect(await metrics.registry.getSingleMetricAsString('gatehouse_rate_limited_total')).toContain(
      'gatehouse_rate_limited_total{scope="login_ip"} 1',
    );
  });

  it('does not count refused attempts, so retrying while limited does not stretch the window', async () => {
    const { l } = limiter(clock, 100, 2, 10);
    await l.recordFailure('10.0.0.5', 'carol');
    await l.recordFailure('10.0.0.5', 'carol');
    for (let i = 0; i < 20; i++) {
      clock.advance(500);
      if ((await l.check('10.0.0.5', 'carol')).limited) continue;
      await l.recordFailure('10.0.0.5', 'carol');
    }
    // Sliding: two failures in the window, the third attempt free once the first has decayed.
    clock.advance(20_000);
    expect((await l.check('10.0.0.5', 'carol')).limited).toBe(false);
  });

  it('a success clears its (username, IP) pair but not the IP budget', async () => {
    const { l } = limiter(clock, 3, 3);
    for (let i = 0; i < 3; i++) await l.recordFailure('10.1.1.1', 'dave');
    await l.recordSuccess('10.1.1.1', 'Dave');
    expect(await l.check('10.1.1.1', 'erin')).toMatchObject({ limited: true, key: 'ip' });
    const fresh = limiter(clock, 100, 3).l;
    for (let i = 0; i < 3; i++) await fresh.recordFailure('10.1.1.1', 'dave');
    await fresh.recordSuccess('10.1.1.1', 'dave');
    expect(await fresh.check('10.1.1.1', 'dave')).toEqual({ limited: false });
  });

  it('holds a bounded number of keys however many addresses fail', async () => {
    const { l } = limiter(clock, 100, 3);
    for (let i = 0; i < 120_000; i++)
      await l.recordFailure(`10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`, 'x');
    const size = (l as unknown as { storage: { size: number } }).storage.size;
    expect(size).toBeLessThanOrEqual(200_000);
  });
});
