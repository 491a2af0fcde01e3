import { createParamDecorator, ExecutionContext } from '@nestjs/common';
import type { Entitlement } from '@gatehouse/entitlements';
import { ociReferenceText } from '@gatehouse/oci';
import type { OciError, OciRoute } from '@gatehouse/oci';
import type { TokenRejection, VerifiedToken } from './registry-token.service';
import { CATALOG_SCOPE, repositoryPullScope, RequiredScope, ScopeGrant } from './scope.util';

/** Who is pulling, and what their token still grants after today's entitlements are applied. */
/** What a key-expiry warning names: the key's listing prefix and its expiry. */
export interface KeyExpiry {
  prefix: string;
  expiresAt: Date | null;
}

export interface RegistryPrincipal {
  memberId: string;
  username: string;
  accessKeyId: string;
  /** The key's listing prefix and expiry, for the key-expiry `Warning` (absent in older fakes: none). */
  accessKey?: KeyExpiry;
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
 * Who a /v2/ request says it is, decided once from its bearer token: the verified token, or
 * nobody (no token, or one that failed verification, with the reason for the audit).
 */
export type RegistryIdentity =
  { kind: 'token'; token: VerifiedToken } | { kind: 'anonymous'; refusal: 'token_missing' | TokenRejection };

/** The request, authorised: what the registry handlers and their audit rows read. */
export interface RegistryAccess {
  route: OciRoute;
  principal: RegistryPrincipal;
  /**
   * The member's live entitlement to the route's repository; null when the member is not (or
   * no longer) entitled to it (the handler answers 404 NAME_UNKNOWN and audits the refusal), or
   * when the route names no repository (ping, catalog).
   */
  entitlement: Entitlement | null;
  /** Every live entitlement of the member, loaded once for this request (the catalog lists them). */
  entitlements: readonly Entitlement[];
}

/** The live entitlement naming the route's repository; null for none, or a route without a repository. */
export function entitlementForRoute(
  route: OciRoute,
  entitlements: readonly Entitlement[],
): Entitlement | null {
  const name = 'name' in route ? route.name : null;
  return name === null ? null : (entitlements.find((e) => e.repository === name) ?? null);
}

/** A member whose key another surface's guard has already checked (signed in, key live, not expired). */
export interface SignedInMember {
  memberId: string;
  username: string;
  accessKeyId: string;
  accessKey: KeyExpiry;
}

/**
 * The registry access of a member signed in on another surface (the portal's session), for one
 * route: the shape the token path builds (`RegistryAuthService.authorizeRoute`), with pull on the
 * route's repository only when a live entitlement names it, so the registry's own handler decides
 * and audits exactly as for a client of that member. `sessionId` stands where a token's id would.
 */
export function signedInRegistryAccess(
  who: SignedInMember,
  route: OciRoute,
  entitlements: readonly Entitlement[],
  sessionId: string,
): RegistryAccess {
  const name = 'name' in route ? route.name : null;
  const entitlement = entitlementForRoute(route, entitlements);
  return {
    route,
    principal: {
      ...who,
      access: entitlement ? [repositoryPullScope(entitlement.repository)] : [],
      tokenId: sessionId,
      requiredScopeGranted: name === null || entitlement !== null,
    },
    entitlement,
    entitlements,
  };
}

/**
 * The typed request-scoped context of a /v2/ request, at `request.gatehouse`. The registry
 * authentication guard creates it (route parsed once, token verified once); the rate limit reads
 * `identity`; the access guard adds `access` (member state and entitlements loaded once).
 */
export interface RegistryRequestContext {
  /** performance.now() when the pipeline started, for audit durations. */
  startedAt: number;
  /** The parsed route; null for a path under /v2/ that is not an OCI route. */
  route: OciRoute | null;
  /** Why the path is malformed (refused after the rate limit, before authentication). */
  routeRefusal: OciError | null;
  identity: RegistryIdentity;
  access?: RegistryAccess;
}

/** The request property the context lives under. */
export const REGISTRY_CONTEXT_PROPERTY = 'gatehouse';

export type RequestWithRegistryContext = { [REGISTRY_CONTEXT_PROPERTY]?: RegistryRequestContext };

export function registryContextOf(request: object): RegistryRequestContext | undefined {
  return (request as RequestWithRegistryContext)[REGISTRY_CONTEXT_PROPERTY];
}

/**
 * Handler parameter: the authorised request (`{route, principal, entitlement}`), as the access
 * guard left it. A handler reached without it is a wiring error, not a client's fault.
 */
export const AuthorisedRegistryRequest = createParamDecorator(
  (_data: unknown, ctx: ExecutionContext): RegistryAccess => {
    const access = registryContextOf(ctx.switchToHttp().getRequest<object>())?.access;
    if (!access) throw new Error('the /v2/ handler ran without the registry access guard');
    return access;
  },
);

/** The scope a route needs: none for the ping, the catalog scope, or pull on its repository. */
export function requiredScopeOf(route: OciRoute): RequiredScope {
  switch (route.kind) {
    case 'ping':
      return null;
    case 'catalog':
      return CATALOG_SCOPE;
    default:
      return repositoryPullScope(route.name);
  }
}

/** How a /v2/ request is named in its audit row (the action and the object it asked for). */
export interface RegistryAuditFacts {
  action: string;
  repository: string | null;
  reference: string | null;
  digest: string | null;
}

const NONE = { repository: null, reference: null, digest: null };

/**
 * The one mapping from a route to its audit action and object, shared by the registry handlers'
 * rows and the rows of requests refused before them (rate limits), so `gatehouse audit --action
 * manifest.get` finds both. A path that is no OCI route is `registry.request`.
 */
export function registryAuditFacts(method: string, route: OciRoute | null): RegistryAuditFacts {
  const head = method === 'HEAD';
  switch (route?.kind) {
    case 'ping':
      return { action: 'registry.ping', ...NONE };
    case 'catalog':
      return { action: 'catalog.list', ...NONE };
    case 'tags':
      return { action: 'tags.list', ...NONE, repository: route.name };
    case 'manifest':
      return {
        action: head ? 'manifest.head' : 'manifest.get',
        repository: route.name,
        reference: ociReferenceText(route.reference),
        digest: route.reference.type === 'digest' ? route.reference.digest : null,
      };
    case 'blob':
      return {
        action: head ? 'blob.head' : 'blob.get',
        repository: route.name,
        reference: route.digest,
        digest: route.digest,
      };
    case 'referrers':
      return { action: 'referrers.list', ...NONE, repository: route.name, digest: route.digest };
    default:
      return { action: 'registry.request', ...NONE };
  }
}
