import { Inject, Injectable } from '@nestjs/common';
import { Counter } from 'prom-client';
import { LoginLimitKey, LoginRateLimiter, RateLimitDecision } from '@gatehouse/auth';
import { GatewayConfig } from '@gatehouse/config';
import { MetricsService } from '@gatehouse/observability';
import { RateLimitFailures } from './rate-limit-failures.service';
import { SlidingWindowCounters } from './sliding-window-counter.storage';
import { SLIDING_WINDOW_COUNTERS } from './sliding-window-counters.provider';

/** The `scope` label of `gatehouse_rate_limited_total` for each login budget. */
const SCOPE: Record<LoginLimitKey, string> = { ip: 'login_ip', username_ip: 'login_username_ip' };

/**
 * Failed logins on the sliding-window counter, in two budgets:
 *
 * - per (username, client IP): `AUTH_FAILED_LOGINS_PER_USERNAME` failures of one username from
 *   one address, then that pair is refused (429) for the rest of the window;
 * - per client IP: `AUTH_FAILED_LOGINS_PER_IP` failures across usernames, then that address is
 *   refused.
 *
 * There is deliberately no budget per username alone: it would let anyone lock a member out by
 * guessing their username from anywhere (issue "lockout by username"). A correct key from an
 * address that has not failed is never refused by another address's failures. Access keys are
 * 256-bit secrets, so what the limits buy is cost control, not the difference between a guess
 * found and not found.
 *
 * A limited attempt is answered before its credentials are checked and is not counted, so an
 * attacker cannot stretch the window by retrying; it is counted in `gatehouse_rate_limited_total`
 * (`scope` `login_ip` or `login_username_ip`). The counters are `SLIDING_WINDOW_COUNTERS`: Redis
 * shared by the replicas when `REDIS_URL` is set, else memory (a restart forgetting the windows
 * only hands an attacker one more window). When they fail, the login goes on to the credential
 * check (fail open, like the request limits) and the failure is counted by RateLimitFailures.
 */
@Injectable()
export class FailedLoginLimiter extends LoginRateLimiter {
  private readonly windowMs: number;
  private readonly perIp: number;
  private readonly perPair: number;
  private readonly limited: Counter<'scope'>;

  constructor(
    config: GatewayConfig,
    metrics: MetricsService,
    @Inject(SLIDING_WINDOW_COUNTERS) private readonly storage: SlidingWindowCounters,
    private readonly failures: RateLimitFailures,
  ) {
    super();
    this.windowMs = config.auth.failedLoginWindowSeconds * 1000;
    this.perIp = config.auth.failedLoginsPerIp;
    this.perPair = config.auth.failedLoginsPerUsername;
    this.limited = metrics.counter(
      'gatehouse_rate_limited_total',
      'Requests refused with 429 by a rate limit, by limit',
      ['scope'],
    );
  }

  async check(ip: string | undefined, username: string | undefined): Promise<RateLimitDecision> {
    let worst: { key: LoginLimitKey; retry: number } | null = null;
    try {
      for (const [key, id, limit] of this.budgets(ip, username)) {
        const r = await this.storage.peek(id, this.windowMs, limit, key);
        if (r.isBlocked && (worst === null || r.timeToBlockExpire > worst.retry))
          worst = { key, retry: r.timeToBlockExpire };
      }
    } catch (error) {
      this.failures.record(error);
      return { limited: false };
    }
    if (worst === null) return { limited: false };
    this.limited.inc({ scope: SCOPE[worst.key] });
    return { limited: true, retryAfterSeconds: worst.retry, key: worst.key };
  }

  async recordFailure(ip: string | undefined, username: string | undefined): Promise<void> {
    try {
      for (const [key, id, limit] of this.budgets(ip, username))
        await this.storage.hit(id, this.windowMs, limit, key);
    } catch (error) {
      this.failures.record(error);
    }
  }

  async recordSuccess(ip: string | undefined, username: string): Promise<void> {
    try {
      await this.storage.reset(pairId(ip, username), 'username_ip');
    } catch (error) {
      this.failures.record(error);
    }
  }

  private budgets(
    ip: string | undefined,
    username: string | undefined,
  ): Array<[LoginLimitKey, string, number]> {
    const out: Array<[LoginLimitKey, string, number]> = [];
    if (ip) out.push(['ip', ip, this.perIp]);
    if (username) out.push(['username_ip', pairId(ip, username), this.perPair]);
    return out;
  }
}

/** One key per (username, client IP); usernames compare case-insensitively, as logins do. */
function pairId(ip: string | undefined, username: string): string {
  return `${ip ?? '-'}\u0000${username.toLowerCase()}`;
}
