import { createCapturingLogger, MetricsService } from '@gatehouse/observability';
import { FakeClock, config } from './testing/upstream-fakes';
import { UpstreamFailureReporter } from './upstream-failure.reporter';
import { UpstreamAuthError, UpstreamServerError } from './upstream.error';

describe('credential backoff after the upstream refuses our credentials', () => {
  const setup = () => {
    const clock = new FakeClock();
    const { logger, lines } = createCapturingLogger('debug');
    const reporter = new UpstreamFailureReporter(
      config('http://up.test'),
      logger,
      new MetricsService(),
      clock,
    );
    return { clock, reporter, backoff: reporter.backoff, lines };
  };
  const refusal = () =>
    new UpstreamAuthError(
      'token_invalid',
      "The upstream Gatehouse refused this gateway's access key (401).",
      {
        request: 'GET /downloads/releases/acme/tool',
        upstreamStatus: 401,
      },
    );

  it('holds every attempt back for 20 s after a refusal, then lets one through', () => {
    const { clock, reporter, backoff, lines } = setup();
    expect(backoff.blocked('GET /x')).toBeNull();
    backoff.refused();
    reporter.fail(refusal());
    const warned = lines().filter((l) => l.reason === 'credentials_backoff');
    expect(warned).toHaveLength(1);
    expect(warned[0].msg).toContain(
      'the next attempt upstream in 20 s, each refusal after it doubling the wait up to 120 s',
    );
    clock.t += 19_000;
    const held = backoff.blocked('GET /y');
    expect(held?.message).toContain("refused this gateway's access key");
    expect(held?.message).toContain('GET /y was not sent; the next attempt upstream is in 1 s');
    clock.t += 1_000;
    expect(backoff.blocked('GET /z')).toBeNull();
  });

  it("doubles the wait with each refusal up to 120 s: five attempts in the upstream's 300 s window", () => {
    const { clock, backoff } = setup();
    const attempts: number[] = [];
    const start = clock.t;
    // Something asks the upstream every second for an hour; each attempt let through is refused.
    for (let s = 0; s < 3600; s++, clock.t += 1000) {
      if (backoff.blocked('GET /x')) continue;
      attempts.push((clock.t - start) / 1000);
      backoff.refused();
    }
    expect(attempts.slice(0, 7)).toEqual([0, 20, 60, 140, 260, 380, 500]);
    // An upstream Gatehouse counts 10 failed logins per username and address in 300 s by default.
    const mostInAWindow = Math.max(
      ...attempts.map((a) => attempts.filter((b) => b >= a && b < a + 300).length),
    );
    expect(mostInAWindow).toBe(5);
  });

  it('holds back after a 429 that follows a refusal (the lock-out), not after a 429 alone', () => {
    const { clock, backoff } = setup();
    backoff.limited();
    expect(backoff.blocked('GET /x')).toBeNull();
    backoff.refused();
    clock.t += 20_000;
    expect(backoff.blocked('GET /x')).toBeNull();
    backoff.limited();
    expect(backoff.blocked('GET /y')?.message).toContain('the next attempt upstream is in 40 s');
  });

  it('an accepted answer ends the backoff at once, and the next refusal waits 20 s again', () => {
    const { backoff } = setup();
    backoff.refused();
    backoff.refused();
    backoff.accepted();
    expect(backoff.blocked('GET /x')).toBeNull();
    backoff.refused();
    expect(backoff.blocked('GET /x')?.message).toContain('the next attempt upstream is in 20 s');
  });

  it('says a 429 follows refused credentials instead of blaming the rate limit', () => {
    const { clock, reporter, backoff } = setup();
    const limited = () =>
      new UpstreamServerError(
        'The upstream registry is rate limiting the gateway (429 on GET /auth/token).',
        {
          request: 'GET /auth/token',
          upstreamStatus: 429,
        },
      );
    expect(reporter.fail(limited()).message).toContain('rate limiting the gateway');
    backoff.refused();
    clock.t += 60_000;
    const err = reporter.fail(limited());
    expect(err.message).toContain("after refusing this gateway's credentials (401)");
    expect(err.message).not.toContain('raise the upstream rate limit');
  });
});

describe('refusals through a Gatehouse upstream', () => {
  it("names the member's access key and `gatehouse explain`, not Forgejo's token scopes", () => {
    const { logger } = createCapturingLogger('debug');
    const reporter = new UpstreamFailureReporter(
      config('http://a.test', { kind: 'gatehouse', username: 'site-b' }),
      logger,
      new MetricsService(),
      new FakeClock(),
    );
    const forgejoWording = (reason: 'token_invalid' | 'token_missing_scope') =>
      new UpstreamAuthError(
        reason,
        'Forgejo rejected the service token. Fix: create a token with read:package.',
        {
          request: 'GET /auth/token',
          upstreamStatus: 401,
        },
      );
    const refused = reporter.fail(forgejoWording('token_invalid')).message;
    expect(refused).toContain(
      "The upstream Gatehouse refused this gateway's access key on GET /auth/token (401)",
    );
    expect(refused).toContain('`gatehouse explain site-b <image>:<tag>`');
    expect(refused).not.toContain('read:package');
    const scoped = reporter.fail(forgejoWording('token_missing_scope')).message;
    expect(scoped).toContain("does not let this gateway's member site-b read this");
    expect(scoped).not.toContain('read:package');
  });
});
