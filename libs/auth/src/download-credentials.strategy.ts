import { createParamDecorator, ExecutionContext, Injectable } from '@nestjs/common';
import { PassportStrategy } from '@nestjs/passport';
import type { FastifyRequest } from 'fastify';
import { AuditService } from '@gatehouse/audit';
import { Entitlement, EntitlementService } from '@gatehouse/entitlements';
import { DownloadRoute, OciError, parseDownloadPath } from '@gatehouse/oci';
import { recordAuthEvent } from './auth-audit';
import { AppPassportGuard, AppScopedStrategy } from './app-scoped-passport';
import { RegistryAuthService } from './registry-auth.service';
import { KeyExpiry } from './registry-request.context';
import { accessCovers, DownloadKind, downloadPullScope, formatScope, ScopeGrant } from './scope.util';
import { TokenService } from './token.service';

/** Who a /downloads/ request was authenticated as. */
export interface DownloadPrincipal {
  memberId: string;
  username: string;
  accessKeyId: string;
  /** The key's listing prefix and expiry, for the key-expiry `Warning` (absent in older fakes: none). */
  accessKey?: KeyExpiry;
  via: 'basic' | 'bearer';
  /** The Bearer token's access list; null for Basic (the member's own entitlements apply). */
  access: ScopeGrant[] | null;
}

/** What a download route asks for: `releases` of `owner/repo`, or `packages` of `owner/name`. */
export interface DownloadTarget {
  kind: DownloadKind;
  /** `owner/name`, lower-cased as entitlement targets are. */
  name: string;
}

/** The target and the member's live entitlement to it (null: not entitled, the handler answers 404). */
export interface DownloadGrant extends DownloadTarget {
  entitlement: Entitlement | null;
}

/** The authorised download request: what DownloadsService, the rate limit and the stream slots read. */
export interface DownloadAccess {
  principal: DownloadPrincipal;
  grant: DownloadGrant;
}

/** The request property the access lives under. */
export const DOWNLOAD_ACCESS_PROPERTY = 'gatehouseDownload';
const DOWNLOAD_TARGET_PROPERTY = 'gatehouseDownloadTarget';
const DOWNLOAD_ROUTE_PROPERTY = 'gatehouseDownloadRoute';

export function downloadAccessOf(request: object): DownloadAccess | undefined {
  return (request as { [DOWNLOAD_ACCESS_PROPERTY]?: DownloadAccess })[DOWNLOAD_ACCESS_PROPERTY];
}

/** The download route the guard parsed (`parseDownloadPath`), for the handler. */
export const RoutedDownload = createParamDecorator((_: unknown, ctx: ExecutionContext): DownloadRoute => {
  const route = downloadRouteOf(ctx.switchToHttp().getRequest() as object);
  if (!route) throw new Error('@RoutedDownload() on a route without DownloadAuthGuard');
  return route;
});

/** The download route the guard parsed for `request`, if it ran. */
export function downloadRouteOf(request: object): DownloadRoute | undefined {
  return (request as { [DOWNLOAD_ROUTE_PROPERTY]?: DownloadRoute })[DOWNLOAD_ROUTE_PROPERTY];
}

/** The target a parsed route names: the scope to carry and the entitlement to load follow from it. */
function targetOfRoute(route: DownloadRoute): DownloadTarget {
  return route.kind === 'package-file' || route.kind === 'package-list' || route.kind === 'package-version'
    ? { kind: 'packages', name: `${route.owner}/${route.name}`.toLowerCase() }
    : { kind: 'releases', name: `${route.owner}/${route.repo}`.toLowerCase() };
}

/**
 * The download surface's access pipeline, as a passport strategy of this application:
 *
 * 1. Credentials, once: Basic username + access key verified exactly as the token endpoint
 *    verifies them (`TokenService.readRequest` + `authenticate`: the failed-login limit first,
 *    every refusal audited), or a Bearer token from `/auth/token` (`RegistryAuthService.identify`
 *    and `memberOf`: the same verification and member-state check as /v2/).
 * 2. Scope: a Bearer token must carry the download scope of the target
 *    (`release:<owner>/<repo>:pull`, `package:<owner>/<name>:pull`); a login token or an image
 *    scope is refused like a bad credential. Basic carries the member's whole grant.
 * 3. Grant, once: the member's live entitlement to the target (EntitlementService), or null.
 *
 * Every refusal is one 401 with `WWW-Authenticate: Basic realm="<service>"`; the audit row names
 * the true reason. What the member may download of the target is decided after, by the handler.
 */
@Injectable()
export class DownloadCredentialsStrategy extends PassportStrategy(AppScopedStrategy) {
  constructor(
    private readonly tokens: TokenService,
    private readonly registry: RegistryAuthService,
    private readonly entitlements: EntitlementService,
    private readonly audit: AuditService,
  ) {
    super('gatehouse-download-credentials');
  }

  async validate(request: FastifyRequest): Promise<DownloadAccess> {
    const target = (request as { [DOWNLOAD_TARGET_PROPERTY]?: DownloadTarget })[DOWNLOAD_TARGET_PROPERTY];
    if (!target) throw new Error('DownloadCredentialsStrategy without DownloadAuthGuard');
    const principal = await this.credentials(request, target);
    const entitlement = await this.entitlements.liveEntitlement(principal.memberId, target.name, target.kind);
    return { principal, grant: { ...target, entitlement } };
  }

  private async credentials(request: FastifyRequest, target: DownloadTarget): Promise<DownloadPrincipal> {
    const header =
      typeof request.headers.authorization === 'string' ? request.headers.authorization : undefined;
    if (!header || !/^bearer\s/i.test(header)) {
      const authenticated = await this.tokens.authenticate(this.tokens.readRequest('GET', header, {}));
      return {
        memberId: authenticated.member.id,
        username: authenticated.member.username,
        accessKeyId: authenticated.accessKey.id,
        accessKey: { prefix: authenticated.accessKey.prefix, expiresAt: authenticated.accessKey.expiresAt },
        via: 'basic',
        access: null,
      };
    }
    const startedAt = performance.now();
    const required = downloadPullScope(target.kind, target.name);
    const identity = await this.registry.identify(header);
    if (identity.kind !== 'token') throw this.refuse(startedAt, identity.refusal, required, {});
    const member = await this.registry.memberOf(identity.token);
    if (!member.ok) throw this.refuse(startedAt, member.reason, required, member.who);
    const who = { memberId: member.memberId, username: member.username };
    if (!accessCovers(identity.token.access, required)) {
      throw this.refuse(startedAt, 'insufficient_scope', required, who);
    }
    return {
      ...who,
      accessKeyId: identity.token.accessKeyId,
      accessKey: member.accessKey,
      via: 'bearer',
      access: identity.token.access,
    };
  }

  /** A Bearer refusal: audited like the registry's, answered with the download surface's Basic 401. */
  private refuse(
    startedAt: number,
    reason: string,
    required: ScopeGrant,
    who: { memberId?: string; username?: string },
  ) {
    recordAuthEvent(this.audit, {
      action: 'download.auth.refuse',
      outcome: 'denied',
      reason,
      httpStatus: 401,
      memberId: who.memberId ?? null,
      username: who.username ?? null,
      startedAt,
      details: { scheme: 'bearer', scopeRequired: formatScope(required) },
    });
    if (reason !== 'insufficient_scope') return this.tokens.unauthorized('bad_credentials');
    // Named from the path alone, whether or not the target exists or is entitled: it tells nothing.
    return this.tokens.unauthorized(
      'insufficient_scope',
      `this token does not carry the scope ${formatScope(required)}: ask /auth/token for it, or use your access key`,
    );
  }
}

/** Runs DownloadCredentialsStrategy for the handler's target; a refusal is the Basic 401. */
@Injectable()
export class DownloadAuthGuard extends AppPassportGuard<DownloadAccess> {
  constructor(
    strategy: DownloadCredentialsStrategy,
    private readonly tokens: TokenService,
  ) {
    super(strategy, DOWNLOAD_ACCESS_PROPERTY);
  }

  override async canActivate(context: ExecutionContext): Promise<boolean> {
    const request = context.switchToHttp().getRequest<{ url: string }>();
    // Parsed once: a path that names no route is the one 404, before credentials (it names nothing).
    const parsed = parseDownloadPath(request.url);
    if (!('route' in parsed))
      throw new OciError('NAME_UNKNOWN', { message: 'not found', reason: parsed.unknown });
    const target = targetOfRoute(parsed.route);
    Object.assign(request, { [DOWNLOAD_TARGET_PROPERTY]: target, [DOWNLOAD_ROUTE_PROPERTY]: parsed.route });
    return (await super.canActivate(context)) as boolean;
  }

  protected accept(user: unknown): DownloadAccess {
    return user as DownloadAccess;
  }

  protected refuse(): never {
    throw this.tokens.unauthorized('bad_credentials');
  }
}

/** Handler parameter: the authorised download (`{principal, grant}`) DownloadAuthGuard left. */
export const AuthorisedDownload = createParamDecorator(
  (_data: unknown, ctx: ExecutionContext): DownloadAccess => {
    const access = downloadAccessOf(ctx.switchToHttp().getRequest<object>());
    if (!access) throw new Error('the download handler ran without DownloadAuthGuard');
    return access;
  },
);
