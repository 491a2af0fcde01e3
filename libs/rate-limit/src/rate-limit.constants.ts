/**
 * The named throttlers. Each name is also the `scope` label of `gatehouse_rate_limited_total`
 * and the `limiter` recorded in the audit row of a limited request.
 */
export const RATE_LIMIT_SCOPES = ['v2_member', 'anonymous_ip', 'token_ip'] as const;

export type RateLimitScope = (typeof RATE_LIMIT_SCOPES)[number];

export function isRateLimitScope(value: string): value is RateLimitScope {
  return (RATE_LIMIT_SCOPES as readonly string[]).includes(value);
}
