import { Injectable } from '@nestjs/common';
import { AuditService } from '@gatehouse/audit';
import { GatewayConfig } from '@gatehouse/config';
import { Entitlement, EntitlementService } from '@gatehouse/entitlements';
import { OCI_ERROR_CODES, OciError, OciRoute } from '@gatehouse/oci';
import { RequestContext } from '@gatehouse/observability';
import { recordAuthEvent } from './auth-audit';
import { buildBearerChallenge } from './challenge.util';
import { MemberStateCache } from './member-state.cache';
import {
  entitlementForRoute,
  KeyExpiry,
  RegistryAccess,
  RegistryIdentity,
  RegistryPrincipal,
  requiredScopeOf,
} from './registry-request.context';
import { RegistryTokenService, TokenVerificationError, VerifiedToken } from './registry-token.service';
import { accessCovers, formatScope, RequiredScope } from './scope.util';

/** A verified token's member, still good, or why not (with the names the audit row carries). */
export type TokenMember =
  | { ok: true; memberId: string; username: string; accessKey: KeyExpiry }
  | {
      ok: false;
      reason: string;
      who: { memberId: string; username: string; accessKeyId: string; tokenId: string };
    };

/**
 * Authentication and authorisation of /v2/ requests, in two steps the request pipeline runs
 * once each, with the rate limit between them:
 *
 * 1. `identify`: the Bearer JWT verified (signature, issuer, audience, lifetime, use), or the
 *    request is anonymous. Nothing is refused yet: the rate limit counts the request first,
 *    against the member or the client IP.
 * 2. `authorize`: MemberStateCache says whether the member and key are still good and
 *    EntitlementService which repositories are still live (one load each), so revocation bites
 *    within AUTH_STATE_CACHE_SECONDS even for tokens already issued.
 *
 * Refusals are OciError UNAUTHORIZED with a `Bearer realm,service,scope` challenge when there is
 * no usable token, or when the member is entitled to the required scope but the token predates
 * it (`error="insufficient_scope"`: the client fetches a new token and retries). A repository
 * the member is not entitled to is not a 401: the handler answers 404 NAME_UNKNOWN.
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

  /** Step 1: the request's token, verified once; never throws for a bad or missing token. */
  async identify(authorization: string | undefined): Promise<RegistryIdentity> {
    const match = authorization ? /^Bearer\s+(\S+)\s*$/i.exec(authorization) : null;
    if (!match) return { kind: 'anonymous', refusal: 'token_missing' };
    try {
      return { kind: 'token', token: await this.tokens.verify(match[1], 'access') };
    } catch (e) {
      if (!(e instanceof TokenVerificationError)) throw e;
      return { kind: 'anonymous', refusal: e.reason };
    }
  }

  /** Step 2 for a route: the principal, and the member's live entitlement to the route's repository. */
  async authorizeRoute(
    identity: RegistryIdentity,
    route: OciRoute,
    startedAt = performance.now(),
  ): Promise<RegistryAccess> {
    const { principal, entitlements } = await this.authorize(identity, requiredScopeOf(route), startedAt);
    const entitlement = principal.requiredScopeGranted ? entitlementForRoute(route, entitlements) : null;
    return { route, principal, entitlement, entitlements };
  }

  /** Step 2: the member and key still good, the token's access cut to today's entitlements. */
  async authorize(
    identity: RegistryIdentity,
    required: RequiredScope,
    startedAt = performance.now(),
  ): Promise<{ principal: RegistryPrincipal; entitlements: Entitlement[] }> {
    if (identity.kind === 'anonymous') {
      // No token is the normal first step of every client (ping, then token): not audited.
      if (identity.refusal === 'token_missing') throw this.unauthorized(required, undefined, 'token_missing');
      this.refuse(startedAt, identity.refusal, required, {});
      throw this.unauthorized(required, 'invalid_token', identity.refusal);
    }
    const verified = identity.token;
    const state = await this.memberOf(verified);
    if (!state.ok) {
      this.refuse(startedAt, state.reason, required, state.who);
      throw this.unauthorized(required, 'invalid_token', state.reason);
    }

    const entitlements = await this.entitlements.liveEntitlements(verified.memberId);
    const live = new Set(entitlements.map((e) => e.repository));
    const access = verified.access.filter((g) => g.type !== 'repository' || live.has(g.name));
    let requiredScopeGranted = true;
    if (required && !accessCovers(access, required)) {
      const grantable =
        required.type === 'registry' || (required.type === 'repository' && live.has(required.name));
      if (grantable) throw this.unauthorized(required, 'insufficient_scope', 'insufficient_scope');
      requiredScopeGranted = false;
    }
    const principal: RegistryPrincipal = {
      memberId: state.memberId,
      username: state.username,
      accessKeyId: verified.accessKeyId,
      accessKey: state.accessKey,
      access,
      tokenId: verified.jti,
      requiredScopeGranted,
    };
    return { principal, entitlements };
  }

  /**
   * The member and key of a verified token, still good (MemberStateCache, one load), and the
   * request context told who it is: the shared first half of every Bearer surface (the registry's
   * `authorize`, the downloads' credentials strategy). The refusal carries what the audit names.
   */
  async memberOf(verified: VerifiedToken): Promise<TokenMember> {
    const state = await this.state.get(verified.memberId, verified.accessKeyId);
    if (!state.ok) {
      const who = {
        memberId: verified.memberId,
        username: verified.username,
        accessKeyId: verified.accessKeyId,
        tokenId: verified.jti,
      };
      return { ok: false, reason: state.reason, who };
    }
    RequestContext.authenticated({ memberId: state.member.id, username: state.member.username });
    const { prefix, expiresAt } = state.accessKey;
    return {
      ok: true,
      memberId: state.member.id,
      username: state.member.username,
      accessKey: { prefix, expiresAt },
    };
  }

  /** Both steps at once, for one Authorization header (tools and tests; the pipeline runs them apart). */
  async authenticate(authorization: string | undefined, required: RequiredScope): Promise<RegistryPrincipal> {
    const startedAt = performance.now();
    return (await this.authorize(await this.identify(authorization), required, startedAt)).principal;
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
      httpStatus: OCI_ERROR_CODES.UNAUTHORIZED.status,
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
