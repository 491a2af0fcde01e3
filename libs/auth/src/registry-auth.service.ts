import { Injectable } from '@nestjs/common';
import { AuditService } from '@gatehouse/audit';
import { GatewayConfig } from '@gatehouse/config';
import { EntitlementService } from '@gatehouse/entitlements';
import { OciError } from '@gatehouse/oci';
import { RequestContext } from '@gatehouse/observability';
import { recordAuthEvent } from './auth-audit';
import { buildBearerChallenge } from './challenge.util';
import { MemberStateCache } from './member-state.cache';
import { RegistryTokenService, TokenVerificationError } from './registry-token.service';
import { accessCovers, formatScope, RequiredScope, ScopeGrant } from './scope.util';

/** Who is pulling, and what their token still grants after today's entitlements are applied. */
export interface RegistryPrincipal {
  memberId: string;
  username: string;
  accessKeyId: string;
  /** The token's access list minus repositories no longer entitled. */
  access: ScopeGrant[];
  /** The token id (jti), for the audit. */
  tokenId: string;
  /**
   * False only when the required scope is a repository the member is not (or no longer)
   * entitled to: the caller answers 404 NAME_UNKNOWN, never 401, so the member learns nothing.
   */
  requiredScopeGranted: boolean;
}

/**
 * Authenticates a request under /v2/. Verifies the Bearer JWT, then asks MemberStateCache whether
 * the member and key are still good and EntitlementService which repositories are still live, so
 * revocation bites within AUTH_STATE_CACHE_SECONDS even for tokens already issued.
 *
 * Throws OciError UNAUTHORIZED with a `Bearer realm,service,scope` challenge when there is no
 * usable token, or when the member is entitled to the required scope but the token predates it
 * (`error="insufficient_scope"`: the client fetches a new token and retries).
 */
@Injectable()
export class RegistryAuthService {
  constructor(
    private readonly config: GatewayConfig,
    private readonly tokens: RegistryTokenService,
    private readonly state: MemberStateCache,
    private readonly entitlements: EntitlementService,
    private readonly audit: AuditService,
  ) {}

  challenge(scope: RequiredScope, error?: 'invalid_token' | 'insufficient_scope'): string {
    return buildBearerChallenge({
      realm: this.config.registry.realm,
      service: this.config.registry.service,
      scope,
      error,
    });
  }

  async authenticate(authorization: string | undefined, required: RequiredScope): Promise<RegistryPrincipal> {
    const startedAt = performance.now();
    const match = authorization ? /^Bearer\s+(\S+)\s*$/i.exec(authorization) : null;
    if (!match) {
      // The normal first step of every client (ping, then token): not audited.
      throw this.unauthorized(required, undefined, 'token_missing');
    }

    let verified;
    try {
      verified = await this.tokens.verify(match[1], 'access');
    } catch (e) {
      if (!(e instanceof TokenVerificationError)) throw e;
      this.refuse(startedAt, e.reason, required, {});
      throw this.unauthorized(required, 'invalid_token', e.reason);
    }

    const who = { memberId: verified.memberId, username: verified.username };
    const state = await this.state.get(verified.memberId, verified.accessKeyId);
    if (!state.ok) {
      this.refuse(startedAt, state.reason, required, {
        ...who,
        accessKeyId: verified.accessKeyId,
        tokenId: verified.jti,
      });
      throw this.unauthorized(required, 'invalid_token', state.reason);
    }
    RequestContext.patch({ memberId: state.member.id, username: state.member.username });

    const live = new Set(
      (await this.entitlements.liveEntitlements(verified.memberId)).map((e) => e.repository),
    );
    const access = verified.access.filter((g) => g.type !== 'repository' || live.has(g.name));
    let requiredScopeGranted = true;
    if (required && !accessCovers(access, required)) {
      const grantable =
        required.type === 'registry' || (required.type === 'repository' && live.has(required.name));
      if (grantable) throw this.unauthorized(required, 'insufficient_scope', 'insufficient_scope');
      requiredScopeGranted = false;
    }
    return {
      memberId: state.member.id,
      username: state.member.username,
      accessKeyId: verified.accessKeyId,
      access,
      tokenId: verified.jti,
      requiredScopeGranted,
    };
  }

  private unauthorized(
    required: RequiredScope,
    error: 'invalid_token' | 'insufficient_scope' | undefined,
    reason: string,
  ): OciError {
    return new OciError('UNAUTHORIZED', {
      headers: { 'WWW-Authenticate': this.challenge(required, error) },
      reason,
    });
  }

  private refuse(
    startedAt: number,
    reason: string,
    required: RequiredScope,
    who: { memberId?: string; username?: string; accessKeyId?: string; tokenId?: string },
  ): void {
    recordAuthEvent(this.audit, {
      action: 'registry.auth.refuse',
      outcome: 'denied',
      reason,
      httpStatus: 401,
      memberId: who.memberId ?? null,
      username: who.username ?? null,
      startedAt,
      details: {
        scopeRequired: required ? formatScope(required) : null,
        accessKeyId: who.accessKeyId ?? null,
        tokenId: who.tokenId ?? null,
      },
    });
  }
}
