import { GatewayConfig } from '@gatehouse/config';
import { Clock } from '@gatehouse/observability';
import { LoginRateLimiter } from './login-rate-limiter.service';

class FakeClock extends Clock {
  ms = 1_000_000;
  override now(): number {
    return this.ms;
  }
}

function limiter(clock: Clock, perIp = 5, perUsername = 3, windowSeconds = 60): LoginRateLimiter {
  const config = {
    auth: {
      failedLoginsPerIp: perIp,
      failedLoginsPerUsername: perUsername,
      failedLoginWindowSeconds: windowSeconds,
    },
  };
  return new LoginRateLimiter(clock, config as unknown as GatewayConfig);
}

describe('LoginRateLimiter', () => {
  it('limits a username after N failures and answers the time until a slot frees', () => {
    const clock = new FakeClock();
    const l = limiter(clock);
    for (let i = 0; i < 3; i++) {
      expect(l.check('10.0.0.1', 'alice').limited).toBe(false);
      l.recordFailure('10.0.0.1', 'alice');
      clock.ms += 1_000;
    }
    const d = l.check('10.0.0.2', 'ALICE');
    expect(d).toEqual({ limited: true, key: 'username', retryAfterSeconds: 57 });
    // Another username from another IP is not affected.
    expect(l.check('10.0.0.2', 'bob').limited).toBe(false);
    clock.ms += 57_000;
    expect(l.check('10.0.0.2', 'alice').limited).toBe(false);
  });

  it('limits an IP across usernames', () => {
    const clock = new FakeClock();
    const l = limiter(clock);
    for (let i = 0; i < 5; i++) l.recordFailure('10.0.0.9', `user${i}`);
    expect(l.check('10.0.0.9', 'someone-else')).toMatchObject({
      limited: true,
      key: 'ip',
      retryAfterSeconds: 60,
    });
    expect(l.check('10.0.0.8', 'someone-else').limited).toBe(false);
  });

  it('slides: old failures age out one by one', () => {
    const clock = new FakeClock();
    const l = limiter(clock, 100, 2, 10);
    l.recordFailure(undefined, 'carol');
    clock.ms += 5_000;
    l.recordFailure(undefined, 'carol');
    expect(l.check(undefined, 'carol')).toMatchObject({ limited: true, retryAfterSeconds: 5 });
    clock.ms += 5_000;
    expect(l.check(undefined, 'carol').limited).toBe(false);
  });

  it('a success clears the username but not the IP', () => {
    const clock = new FakeClock();
    const l = limiter(clock, 3, 3);
    for (let i = 0; i < 3; i++) l.recordFailure('10.1.1.1', 'dave');
    l.recordSuccess('dave');
    expect(l.check('10.1.1.2', 'dave').limited).toBe(false);
    expect(l.check('10.1.1.1', 'erin')).toMatchObject({ limited: true, key: 'ip' });
  });
});
