import { Injectable } from '@nestjs/common';
import { GatewayConfig } from '@gatehouse/config';
import { Clock } from '@gatehouse/observability';

export type RateLimitDecision =
  { limited: false } | { limited: true; retryAfterSeconds: number; key: 'ip' | 'username' };

/** Distinct IPs/usernames tracked at most; beyond it the oldest are dropped (memory stays bounded). */
const MAX_TRACKED = 50_000;

/**
 * Sliding-window limits on FAILED logins, per client IP and per attempted username. A limited
 * request is answered 429 before its credentials are checked, so guessing stops costing us a
 * lookup too. In memory: one gateway process is the deployment unit, and a restart forgetting
 * the windows only hands an attacker one more window.
 */
@Injectable()
export class LoginRateLimiter {
  private readonly byIp = new Map<string, number[]>();
  private readonly byUsername = new Map<string, number[]>();
  private readonly windowMs: number;
  private readonly perIp: number;
  private readonly perUsername: number;

  constructor(
    private readonly clock: Clock,
    config: GatewayConfig,
  ) {
    this.windowMs = config.auth.failedLoginWindowSeconds * 1000;
    this.perIp = config.auth.failedLoginsPerIp;
    this.perUsername = config.auth.failedLoginsPerUsername;
  }

  check(ip: string | undefined, username: string | undefined): RateLimitDecision {
    const now = this.clock.now();
    const candidates: Array<{ key: 'ip' | 'username'; retry: number }> = [];
    if (ip) {
      const retry = this.retryAfter(this.byIp, ip, this.perIp, now);
      if (retry !== null) candidates.push({ key: 'ip', retry });
    }
    if (username) {
      const retry = this.retryAfter(this.byUsername, username.toLowerCase(), this.perUsername, now);
      if (retry !== null) candidates.push({ key: 'username', retry });
    }
    if (candidates.length === 0) return { limited: false };
    const worst = candidates.reduce((a, b) => (b.retry > a.retry ? b : a));
    return { limited: true, retryAfterSeconds: worst.retry, key: worst.key };
  }

  recordFailure(ip: string | undefined, username: string | undefined): void {
    const now = this.clock.now();
    if (ip) this.push(this.byIp, ip, now);
    if (username) this.push(this.byUsername, username.toLowerCase(), now);
  }

  /** A successful login clears its username's failures (not the IP's: one good account must not unlock guessing). */
  recordSuccess(username: string): void {
    this.byUsername.delete(username.toLowerCase());
  }

  private retryAfter(map: Map<string, number[]>, key: string, limit: number, now: number): number | null {
    const times = this.prune(map, key, now);
    if (times.length < limit) return null;
    // The window frees a slot when the oldest failure that keeps the count at the limit ages out.
    const oldest = times[times.length - limit];
    return Math.max(1, Math.ceil((oldest + this.windowMs - now) / 1000));
  }

  private push(map: Map<string, number[]>, key: string, now: number): void {
    const times = this.prune(map, key, now);
    times.push(now);
    // Only the most recent failures matter; keep the array short.
    const cap = Math.max(this.perIp, this.perUsername) + 1;
    if (times.length > cap) times.splice(0, times.length - cap);
    map.delete(key);
    map.set(key, times);
    if (map.size > MAX_TRACKED) map.delete(map.keys().next().value as string);
  }

  private prune(map: Map<string, number[]>, key: string, now: number): number[] {
    const times = map.get(key);
    if (!times) return [];
    const cutoff = now - this.windowMs;
    let drop = 0;
    while (drop < times.length && times[drop] <= cutoff) drop++;
    if (drop > 0) times.splice(0, drop);
    if (times.length === 0) map.delete(key);
    return times;
  }
}
