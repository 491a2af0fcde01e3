import { ExecutionContext, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import {
  InjectThrottlerOptions,
  InjectThrottlerStorage,
  ThrottlerException,
  ThrottlerGuard,
  ThrottlerLimitDetail,
  ThrottlerModuleOptions,
  ThrottlerRequest,
  ThrottlerStorage,
} from '@nestjs/throttler';
import type { FastifyRequest } from 'fastify';
import { Counter } from 'prom-client';
import { AuditService } from '@gatehouse/audit';
import { downloadAccessOf, registryContextOf } from '@gatehouse/auth';
import { MetricsService } from '@gatehouse/observability';
import { isRegistryUrl, OCI_ERROR_CODES, OciError } from '@gatehouse/oci';
import { rateLimitKey } from './member-limit.peek';
import { isRateLimitScope, RateLimitScope } from './rate-limit.constants';
import { RateLimitFailures } from './rate-limit-failures.service';
import { limitedRequestFacts } from './rate-limited-request.util';

/**
 * The request limits, on @nestjs/throttler's sliding-window storage. One guard for the three
 * named throttlers: `v2_member` counts /v2/ requests carrying a valid token against the member,
 * `anonymous_ip` counts /v2/ requests without one against the client IP, `token_ip` counts token
 * requests against the client IP. A limited request is a 429 TOOMANYREQUESTS OCI error with
 * Retry-After (through the one exception filter), an audit row and a metric. On /v2/ it reads
 * the identity and the route from the request's registry context (`request.gatehouse`, left by
 * the registry pipeline's first guard): it neither verifies tokens nor parses paths itself.
 *
 * When the storage fails the request is let through (fail open), logged and counted in
 * `gatehouse_rate_limit_storage_failures_total`: the limits protect capacity, they are not an
 * access control, so a broken counter must not turn into an outage of every pull. Access is
 * still decided by the token and the entitlements behind this guard.
 */
@Injectable()
export class RateLimitGuard extends ThrottlerGuard {
  private readonly identities = new WeakMap<object, RateLimitIdentity>();
  private readonly limitedTotal: Counter<'scope'>;

  constructor(
    @InjectThrottlerOptions() options: ThrottlerModuleOptions,
    @InjectThrottlerStorage() storage: ThrottlerStorage,
    reflector: Reflector,
    private readonly audit: AuditService,
    private readonly failures: RateLimitFailures,
    metrics: MetricsService,
  ) {
    super(options, storage, reflector);
    this.limitedTotal = metrics.counter(
      'gatehouse_rate_limited_total',
      'Requests refused with 429 by a rate limit, by limit',
      ['scope'],
    );
  }

  override async canActivate(context: ExecutionContext): Promise<boolean> {
    const startedAt = performance.now();
    const request = context.switchToHttp().getRequest<FastifyRequest>();
    if (isRegistryUrl(request.url)) this.identities.set(request, registryIdentity(request));
    else {
      // The download surface authenticates first (DownloadAuthGuard): its member's /v2/ budget applies.
      const download = downloadAccessOf(request)?.principal;
      if (download)
        this.identities.set(request, {
          kind: 'member',
          memberId: download.memberId,
          username: download.username,
        });
    }
    try {
      (request as RequestWithStart)[STARTED_AT] = startedAt;
      return await super.canActivate(context);
    } catch (error) {
      if (error instanceof OciError || error instanceof ThrottlerException) throw error;
      this.failures.record(error);
      return true;
    }
  }

  protected override async handleRequest(props: ThrottlerRequest): Promise<boolean> {
    const scope = props.throttler.name ?? '';
    if (!isRateLimitScope(scope) || props.limit <= 0) return true;
    const request = props.context.switchToHttp().getRequest<FastifyRequest>();
    const tracker = this.tracker(scope, request);
    if (tracker === null) return true;
    return super.handleRequest({
      ...props,
      // The same bucket whichever handler serves the route (GET and POST /auth/token share one).
      getTracker: () => tracker,
      generateKey: (_context, suffix, name) => rateLimitKey(name as RateLimitScope, suffix),
    });
  }

  protected override async throwThrottlingException(
    context: ExecutionContext,
    detail: ThrottlerLimitDetail,
  ): Promise<void> {
    const request = context.switchToHttp().getRequest<FastifyRequest>();
    const scope = detail.key.slice(0, detail.key.indexOf(':')) as RateLimitScope;
    const retryAfterSeconds = Math.max(1, Math.ceil(detail.timeToBlockExpire));
    const who = this.identities.get(request);
    const facts = limitedRequestFacts(request.method, request.url, registryContextOf(request)?.route ?? null);
    this.limitedTotal.inc({ scope });
    this.audit.record({
      action: facts.action,
      outcome: 'denied',
      reason: 'rate_limited',
      httpStatus: OCI_ERROR_CODES.TOOMANYREQUESTS.status,
      memberId: who?.kind === 'member' ? who.memberId : null,
      username: who?.kind === 'member' ? who.username : null,
      repository: facts.repository,
      reference: facts.reference,
      digest: facts.digest,
      durationMs: performance.now() - ((request as RequestWithStart)[STARTED_AT] ?? performance.now()),
      details: {
        limiter: scope,
        limit: detail.limit,
        windowSeconds: Math.round(detail.ttl / 1000),
        retryAfterSeconds,
      },
    });
    throw new OciError('TOOMANYREQUESTS', {
      message: `too many requests: retry after ${retryAfterSeconds} s`,
      headers: { 'Retry-After': String(retryAfterSeconds) },
      reason: 'rate_limited',
    });
  }

  /** The bucket a request counts in for one limit, or null when that limit does not apply. */
  private tracker(scope: RateLimitScope, request: FastifyRequest): string | null {
    const who = this.identities.get(request);
    switch (scope) {
      case 'v2_member':
        return who?.kind === 'member' ? who.memberId : null;
      case 'anonymous_ip':
        return who?.kind === 'anonymous' ? who.ip : null;
      case 'token_ip':
        return request.ip;
    }
  }
}

const STARTED_AT = Symbol('rateLimitStartedAt');
type RequestWithStart = FastifyRequest & { [STARTED_AT]?: number };

/** Whom a /v2/ request counts against: a member proven by a verified token, or else its client IP. */
export type RateLimitIdentity =
  { kind: 'member'; memberId: string; username: string } | { kind: 'anonymous'; ip: string };

/**
 * The identity the registry pipeline's first guard decided (the token verified once, there).
 * A verified token counts against its member even when the member or key has since been
 * revoked: that request is refused after the count, whichever bucket it was counted in. Keying
 * on a token that failed verification would let anyone spend another member's budget (a forged
 * `sub`) or escape the per-IP limit (a fresh `sub` per request), so those count per IP.
 */
export function registryIdentity(request: FastifyRequest): RateLimitIdentity {
  const gatehouse = registryContextOf(request);
  if (!gatehouse) throw new Error('RateLimitGuard on /v2/ needs the registry authentication guard before it');
  const identity = gatehouse.identity;
  return identity.kind === 'token'
    ? { kind: 'member', memberId: identity.token.memberId, username: identity.token.username }
    : { kind: 'anonymous', ip: request.ip };
}
