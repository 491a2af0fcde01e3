import { applyDecorators, CanActivate, ExecutionContext, Injectable, UseGuards } from '@nestjs/common';
import {
  AppPassportGuard,
  REGISTRY_CONTEXT_PROPERTY,
  RegistryAuthService,
  registryContextOf,
  RegistryIdentity,
  RegistryRequestContext,
  RegistryTokenStrategy,
} from '@gatehouse/auth';
import { GatewayConfig } from '@gatehouse/config';
import { OciError, OciRoute, parseRegistryUrl } from '@gatehouse/oci';
import { BlobStreamSlotGuard, RateLimitGuard, rateLimitSkips } from '@gatehouse/rate-limit';
import { RegistryAudit } from '@gatehouse/registry';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { setMetricsRoute } from '../http/request-hooks';

const READ_METHODS = new Set(['GET', 'HEAD']);

/**
 * Step 1 of every /v2/ request: parse the route once by the spec grammar and verify the token
 * once (this application's RegistryTokenStrategy, through passport). Refuses nothing: a
 * malformed path or a missing or bad token is kept in the context and refused by
 * RegistryAccessGuard after the rate limit has counted the request.
 */
@Injectable()
export class RegistryAuthGuard extends AppPassportGuard<RegistryRequestContext> {
  constructor(strategy: RegistryTokenStrategy) {
    super(strategy, REGISTRY_CONTEXT_PROPERTY);
  }

  override async canActivate(context: ExecutionContext): Promise<boolean> {
    const request = context.switchToHttp().getRequest<FastifyRequest>();
    const startedAt = performance.now();
    let route: OciRoute | null = null;
    let routeRefusal: OciError | null = null;
    try {
      route = parseRegistryUrl(request.url);
    } catch (e) {
      if (!(e instanceof OciError)) throw e;
      routeRefusal = e;
    }
    const pending: RegistryRequestContext = {
      startedAt,
      route,
      routeRefusal,
      identity: { kind: 'anonymous', refusal: 'token_missing' },
    };
    (request as { [REGISTRY_CONTEXT_PROPERTY]?: RegistryRequestContext })[REGISTRY_CONTEXT_PROPERTY] =
      pending;
    return super.canActivate(context) as Promise<boolean>;
  }

  protected accept(user: unknown, context: ExecutionContext): RegistryRequestContext {
    return this.withIdentity(context, user as RegistryIdentity);
  }

  /** No usable token: the request goes on as anonymous; the access guard answers the 401. */
  protected refuse(info: unknown, context: ExecutionContext): RegistryRequestContext {
    return this.withIdentity(context, info as RegistryIdentity);
  }

  private withIdentity(context: ExecutionContext, identity: RegistryIdentity): RegistryRequestContext {
    const pending = registryContextOf(context.switchToHttp().getRequest<object>());
    if (!pending) throw new Error('registry context missing after authentication');
    return { ...pending, identity };
  }
}

/**
 * Step 3 (after the rate limit): the decisions, in the contract's order. Write methods are
 * refused (405), then a malformed path (400), a disabled registry (503, naming the variables),
 * a path that is no OCI route (404); then the request is authorised once (member and key still
 * good, entitlements loaded once, the scope covered: else 401 with the Bearer challenge) and
 * `{route, principal, entitlement}` is attached for the handler.
 */
@Injectable()
export class RegistryAccessGuard implements CanActivate {
  constructor(
    private readonly config: GatewayConfig,
    private readonly auth: RegistryAuthService,
    private readonly audit: RegistryAudit,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const http = context.switchToHttp();
    const request = http.getRequest<FastifyRequest>();
    http.getResponse<FastifyReply>().header('Docker-Distribution-API-Version', 'registry/2.0');
    const gatehouse = registryContextOf(request);
    if (!gatehouse) throw new Error('RegistryAccessGuard needs RegistryAuthGuard before it');
    if (!READ_METHODS.has(request.method)) {
      setMetricsRoute(request, '/v2/(write)');
      throw new OciError('UNSUPPORTED', {
        message: 'this registry is read-only: pushing, deleting and uploading are not supported',
        reason: 'write_method',
      });
    }
    if (gatehouse.routeRefusal) throw gatehouse.routeRefusal;
    const route = gatehouse.route;
    setMetricsRoute(request, route ? `/v2/${route.kind}` : '/v2/(unknown)');
    if (!this.config.upstream.enabled) {
      throw new OciError('UNAVAILABLE', {
        message: `the registry is disabled: the operator must set ${this.config.upstream.missing.join(' and ')}`,
        reason: 'registry_disabled',
      });
    }
    if (!route)
      throw new OciError('NAME_UNKNOWN', { message: 'not a registry API path', reason: 'unknown_path' });
    if (route.kind === 'upload') throw new OciError('UNSUPPORTED', { reason: 'write_method' });
    try {
      gatehouse.access = await this.auth.authorizeRoute(gatehouse.identity, route, gatehouse.startedAt);
    } catch (e) {
      // 401s are audited by RegistryAuthService; anything else gets the handler's row.
      this.audit.unauthorised(request.method, route, gatehouse.startedAt, e);
      throw e;
    }
    return true;
  }
}

/**
 * The /v2/ request pipeline, in this order: parse and verify (RegistryAuthGuard), count
 * (RateLimitGuard: per member with a verified token, else per client IP), decide
 * (RegistryAccessGuard), then take a blob-stream slot for an authorised blob GET
 * (BlobStreamSlotGuard: a cap per member, 429 beyond it). The handler then reads the
 * context with @AuthorisedRegistryRequest(). No interceptor: Nest wraps each request that has
 * one in an AsyncResource, which cost warm manifest GETs a third of their rate (figure 2).
 */
export function RegistryPipeline(): ClassDecorator {
  return applyDecorators(
    rateLimitSkips('registry'),
    UseGuards(RegistryAuthGuard, RateLimitGuard, RegistryAccessGuard, BlobStreamSlotGuard),
  );
}
