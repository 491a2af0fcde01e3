/** Which budget refused a login: the client IP's, or this username's from this client IP. */
export type LoginLimitKey = 'ip' | 'username_ip';

export type RateLimitDecision =
  { limited: false } | { limited: true; retryAfterSeconds: number; key: LoginLimitKey };

/**
 * The failed-login limits as the token endpoint sees them. The implementation lives in
 * libs/rate-limit (`FailedLoginLimiter`, bound to this class by `RateLimitModule`); this lib only
 * names the calls, because libs/rate-limit already depends on libs/auth (it verifies tokens to
 * find a request's member) and a direct import back would be a cycle.
 *
 * Failures count per (username, client IP) and per client IP, never per username alone: a
 * stranger's guesses must not refuse the member's correct key from another address. Asynchronous,
 * because the counters may live in Redis shared by the replicas; a failing store never throws
 * here (the implementation fails open).
 */
export abstract class LoginRateLimiter {
  /** Whether a login attempt may go on to the credential check; asked before it. */
  abstract check(ip: string | undefined, username: string | undefined): Promise<RateLimitDecision>;

  /** A refused credential (bad key, revoked key, disabled member, bad refresh token). */
  abstract recordFailure(ip: string | undefined, username: string | undefined): Promise<void>;

  /** A good credential clears its (username, IP) failures; the IP's own budget stays. */
  abstract recordSuccess(ip: string | undefined, username: string): Promise<void>;
}
