import { createParamDecorator, ExecutionContext, Injectable } from '@nestjs/common';
import { PassportStrategy } from '@nestjs/passport';
import type { FastifyRequest } from 'fastify';
import { AuditService } from '@gatehouse/audit';
import { RequestContext } from '@gatehouse/observability';
import { recordAuthEvent } from './auth-audit';
import { AppPassportGuard, AppScopedStrategy } from './app-scoped-passport';
import { MemberStateCache } from './member-state.cache';
import { RegistryAuthService } from './registry-auth.service';
import { TokenService } from './token.service';

/** Who a /downloads/ request was authenticated as. */
export interface DownloadIdentity {
  memberId: string;
  username: string;
  accessKeyId: string;
  via: 'basic' | 'bearer';
}

/** The request property the identity lives under (read by the rate limit and the handler). */
export const DOWNLOAD_IDENTITY_PROPERTY = 'gatehouseDownload';

export function downloadIdentityOf(request: object): DownloadIdentity | undefined {
  return (request as { [DOWNLOAD_IDENTITY_PROPERTY]?: DownloadIdentity })[DOWNLOAD_IDENTITY_PROPERTY];
}

/**
 * The download surface's credentials, as a passport strategy of this application: Basic
 * username + access key verified exactly as the token endpoint verifies them
 * (`TokenService.readRequest` + `authenticate`: the failed-login limit first, every refusal
 * audited, one 401 with `WWW-Authenticate: Basic realm="<service>"`), or a Bearer token from
 * `/auth/token` verified once (`RegistryAuthService.identify`) with the member and key still good
 * (`MemberStateCache`). What the member may download is decided after, from the entitlements.
 */
@Injectable()
export class DownloadCredentialsStrategy extends PassportStrategy(AppScopedStrategy) {
  constructor(
    private readonly tokens: TokenService,
    private readonly registry: RegistryAuthService,
    private readonly state: MemberStateCache,
    private readonly audit: AuditService,
  ) {
    super('gatehouse-download-credentials');
  }

  async validate(request: FastifyRequest): Promise<DownloadIdentity> {
    const header =
      typeof request.headers.authorization === 'string' ? request.headers.authorization : undefined;
    if (header && /^bearer\s/i.test(header)) {
      const startedAt = performance.now();
      const identity = await this.registry.identify(header);
      if (identity.kind !== 'token') throw this.refuse(startedAt, identity.refusal, {});
      const verified = identity.token;
      const state = await this.state.get(verified.memberId, verified.accessKeyId);
      if (!state.ok)
        throw this.refuse(startedAt, state.reason, {
          memberId: verified.memberId,
          username: verified.username,
        });
      RequestContext.patch({ memberId: state.member.id, username: state.member.username });
      return {
        memberId: state.member.id,
        username: state.member.username,
        accessKeyId: verified.accessKeyId,
        via: 'bearer',
      };
    }
    const authenticated = await this.tokens.authenticate(this.tokens.readRequest('GET', header, {}));
    return {
      memberId: authenticated.member.id,
      username: authenticated.member.username,
      accessKeyId: authenticated.accessKey.id,
      via: 'basic',
    };
  }

  /** A Bearer refusal: audited like the registry's, answered with the download surface's Basic 401. */
  private refuse(startedAt: number, reason: string, who: { memberId?: string; username?: string }) {
    recordAuthEvent(this.audit, {
      action: 'download.auth.refuse',
      outcome: 'denied',
      reason,
      httpStatus: 401,
      memberId: who.memberId ?? null,
      username: who.username ?? null,
      startedAt,
      details: { scheme: 'bearer' },
    });
    return this.tokens.unauthorized('bad_credentials');
  }
}

/** Runs DownloadCredentialsStrategy; a refusal is the strategy's own 401 (Basic challenge). */
@Injectable()
export class DownloadAuthGuard extends AppPassportGuard<DownloadIdentity> {
  constructor(
    strategy: DownloadCredentialsStrategy,
    private readonly tokens: TokenService,
  ) {
    super(strategy, DOWNLOAD_IDENTITY_PROPERTY);
  }

  protected accept(user: unknown): DownloadIdentity {
    return user as DownloadIdentity;
  }

  protected refuse(): never {
    throw this.tokens.unauthorized('bad_credentials');
  }
}

/** Handler parameter: the identity DownloadAuthGuard left. */
export const AuthenticatedDownload = createParamDecorator(
  (_data: unknown, ctx: ExecutionContext): DownloadIdentity => {
    const identity = downloadIdentityOf(ctx.switchToHttp().getRequest<object>());
    if (!identity) throw new Error('the download handler ran without DownloadAuthGuard');
    return identity;
  },
);
