import { Injectable } from '@nestjs/common';
import { AuditService } from '@gatehouse/audit';
import { GatewayConfig } from '@gatehouse/config';
import { databaseUnavailableOciError } from '@gatehouse/database';
import { EntitlementService } from '@gatehouse/entitlements';
import {
  AccessKey,
  AccessKeyService,
  CredentialFailureReason,
  Member,
  normalizeUsername,
} from '@gatehouse/members';
import { OCI_ERROR_CODES, OciError, OciErrorCode } from '@gatehouse/oci';
import { AppLogger, RequestContext } from '@gatehouse/observability';
import { recordAuthEvent } from './auth-audit';
import { buildBasicChallenge } from './challenge.util';
import { LoginRateLimiter } from './login-rate-limiter.service';
import { RegistryTokenService, TokenVerificationError } from './registry-token.service';
import {
  formatScope,
  grantScopes,
  scopeKinds,
  parseScopes,
  ResourceScope,
  ScopeGrant,
  ScopeParseError,
} from './scope.util';

/** The token endpoint's answer (Docker token spec and its OAuth2 variant). */
export interface TokenResponse {
  token: string;
  access_token: string;
  expires_in: number;
  issued_at: string;
  scope?: string;
  refresh_token?: string;
}

/** Query (GET) or form (POST) values as Fastify parses them. */
export type TokenParams = Record<string, unknown>;

/** A token request as read from the wire: the grant, its credentials and the scopes asked for. */
export interface TokenRequest {
  method: 'GET' | 'POST';
  grantType: 'password' | 'refresh_token';
  username?: string;
  password?: string;
  refreshToken?: string;
  scopes: ResourceScope[];
  /** The scope string as the client sent it (echoed on POST). */
  scopeText: string;
  clientId?: string;
  offline: boolean;
  /** performance.now() when the request was read, for the audit row's duration. */
  startedAt: number;
}

/** A token request whose credentials were verified: what the token endpoint issues for. */
export interface AuthenticatedTokenRequest {
  request: TokenRequest;
  member: Member;
  accessKey: AccessKey;
  /** The audit details gathered so far (grant, method, client, scopes). */
  details: Record<string, unknown>;
}

type RefusalReason =
  | CredentialFailureReason
  | 'credentials_missing'
  | 'rate_limited'
  | 'malformed_request'
  | 'database_unavailable';

const GENERIC_UNAUTHORIZED = 'invalid username or access key';

/**
 * Credentials in, scoped JWT out. Every refusal of credentials is the same 401 whatever the true
 * reason (which goes to the audit row); failed logins are rate limited per (username, client IP)
 * and per client IP, never per username alone (`LoginRateLimiter`).
 */
@Injectable()
export class TokenService {
  constructor(
    private readonly config: GatewayConfig,
    private readonly keys: AccessKeyService,
    private readonly entitlements: EntitlementService,
    private readonly tokens: RegistryTokenService,
    private readonly limiter: LoginRateLimiter,
    private readonly audit: AuditService,
    private readonly logger: AppLogger,
  ) {}

  /**
   * Reads a token request: `GET` is the Docker token spec (Basic credentials, repeated `scope`,
   * `offline_token`, `client_id`), `POST` its OAuth2 form with `grant_type` password (form
   * fields, else Basic) or refresh_token. A malformed request is a 400, audited.
   */
  readRequest(method: 'GET' | 'POST', authorization: string | undefined, params: TokenParams): TokenRequest {
    const startedAt = performance.now();
    if (method === 'GET') {
      const basic = parseBasic(authorization);
      return this.buildRequest(startedAt, {
        method: 'GET',
        grantType: 'password',
        username: basic?.username,
        password: basic?.password,
        scopeValues: values(params, 'scope'),
        clientId: single(params, 'client_id'),
        offline: single(params, 'offline_token')?.toLowerCase() === 'true',
      });
    }
    const grantType = single(params, 'grant_type');
    const base = {
      method: 'POST' as const,
      scopeValues: values(params, 'scope'),
      clientId: single(params, 'client_id'),
      offline: single(params, 'access_type') === 'offline',
    };
    if (grantType === 'password') {
      const basic = parseBasic(authorization);
      return this.buildRequest(startedAt, {
        ...base,
        grantType,
        username: single(params, 'username') ?? basic?.username,
        password: single(params, 'password') ?? basic?.password,
      });
    }
    if (grantType === 'refresh_token') {
      return this.buildRequest(startedAt, {
        ...base,
        grantType,
        refreshToken: single(params, 'refresh_token'),
      });
    }
    this.refuse(
      startedAt,
      'malformed_request',
      'REQUEST_INVALID',
      { username: single(params, 'username') },
      { grantType: grantType ?? null },
    );
    throw new OciError('REQUEST_INVALID', {
      message:
        grantType === undefined
          ? 'grant_type is required: use password or refresh_token'
          : `unsupported grant_type "${grantType.slice(0, 64)}": use password or refresh_token`,
      reason: 'malformed_request',
    });
  }

  private buildRequest(
    startedAt: number,
    input: Omit<TokenRequest, 'scopes' | 'scopeText' | 'startedAt'> & { scopeValues: string[] },
  ): TokenRequest {
    try {
      const scopes = parseScopes(input.scopeValues);
      return { ...input, scopes, scopeText: input.scopeValues.join(' ').trim(), startedAt };
    } catch (e) {
      if (!(e instanceof ScopeParseError)) throw e;
      this.refuse(
        startedAt,
        'malformed_request',
        'REQUEST_INVALID',
        { username: input.username },
        { scopesRequested: input.scopeValues },
      );
      throw new OciError('REQUEST_INVALID', { message: e.message, reason: 'malformed_request' });
    }
  }

  /**
   * Verifies a token request's credentials: failed logins are rate limited (checked before the
   * credentials are looked at), then the access key or refresh token is checked. Every refusal
   * is the same 401 with the Basic challenge whatever the true reason (which goes to the audit).
   */
  async authenticate(request: TokenRequest): Promise<AuthenticatedTokenRequest> {
    const { startedAt } = request;
    const attempted =
      request.username !== undefined ? normalizeUsername(request.username).slice(0, 128) : undefined;
    const requested = request.scopes.map(formatScope);
    const details: Record<string, unknown> = {
      grantType: request.grantType,
      method: request.method,
      clientId: request.clientId ?? null,
      offline: request.offline,
      scopesRequested: requested,
    };

    try {
      return await this.verify(request, attempted, details);
    } catch (e) {
      throw this.auditedIfUnavailable(e, startedAt, { username: attempted }, details);
    }
  }

  private async verify(
    request: TokenRequest,
    attempted: string | undefined,
    details: Record<string, unknown>,
  ): Promise<AuthenticatedTokenRequest> {
    const { startedAt } = request;
    const ctx = RequestContext.current();
    const limit = await this.limiter.check(ctx?.clientIp, attempted);
    if (limit.limited) {
      this.refuse(
        startedAt,
        'rate_limited',
        'TOOMANYREQUESTS',
        { username: attempted },
        { ...details, limitedBy: limit.key },
      );
      throw new OciError('TOOMANYREQUESTS', {
        message: `too many failed logins: retry after ${limit.retryAfterSeconds} seconds`,
        headers: { 'Retry-After': String(limit.retryAfterSeconds) },
        reason: 'rate_limited',
      });
    }

    const { member, accessKey } = await this.checkCredentials(request, attempted, details, startedAt);
    await this.limiter.recordSuccess(ctx?.clientIp, member.username);
    RequestContext.authenticated({ memberId: member.id, username: member.username });
    return { request, member, accessKey, details };
  }

  /** Scoped JWT (and a refresh token for offline access) for verified credentials. */
  async issue(authenticated: AuthenticatedTokenRequest): Promise<TokenResponse> {
    const { request, member, accessKey, details } = authenticated;
    const { startedAt } = request;
    const live = new Set<string>();
    try {
      for (const kind of scopeKinds(request.scopes)) {
        for (const e of await this.entitlements.liveEntitlements(member.id, kind))
          live.add(`${kind}:${e.repository}`);
      }
    } catch (e) {
      throw this.auditedIfUnavailable(
        e,
        startedAt,
        { memberId: member.id, username: member.username },
        details,
      );
    }
    const access: ScopeGrant[] = grantScopes(request.scopes, (kind, name) => live.has(`${kind}:${name}`));
    const tokenSubject = { memberId: member.id, username: member.username, accessKeyId: accessKey.id };
    const signed = await this.tokens.signAccessToken(tokenSubject, access);
    const response: TokenResponse = {
      token: signed.token,
      access_token: signed.token,
      expires_in: signed.expiresIn,
      issued_at: signed.issuedAt.toISOString(),
    };
    if (request.method === 'POST') response.scope = request.scopeText;
    // A refresh grant does not mint another refresh token: the client keeps the one it has.
    if (request.offline && request.grantType === 'password') {
      response.refresh_token = (await this.tokens.signRefreshToken(tokenSubject, accessKey.expiresAt)).token;
    }

    this.keys
      .touchLastUsed(accessKey.id)
      .catch((e: unknown) => this.logger.warn({ err: e }, 'could not record last use of an access key'));
    recordAuthEvent(this.audit, {
      action: 'token.issue',
      outcome: 'allowed',
      httpStatus: 200,
      memberId: member.id,
      username: member.username,
      startedAt,
      details: {
        ...details,
        accessKeyId: accessKey.id,
        accessKeyPrefix: accessKey.prefix,
        scopesGranted: access.map(formatScope),
        refreshToken: response.refresh_token !== undefined,
        expiresIn: signed.expiresIn,
      },
    });
    return response;
  }

  private async checkCredentials(
    request: TokenRequest,
    attempted: string | undefined,
    details: Record<string, unknown>,
    startedAt: number,
  ): Promise<{ member: Member; accessKey: AccessKey }> {
    const ctx = RequestContext.current();
    if (request.grantType === 'refresh_token') {
      if (!request.refreshToken) {
        this.refuse(startedAt, 'malformed_request', 'REQUEST_INVALID', {}, details);
        throw new OciError('REQUEST_INVALID', {
          message: 'refresh_token is required for grant_type=refresh_token',
          reason: 'malformed_request',
        });
      }
      let memberId: string;
      let accessKeyId: string;
      try {
        ({ memberId, accessKeyId } = await this.tokens.verify(request.refreshToken, 'refresh'));
      } catch (e) {
        if (!(e instanceof TokenVerificationError)) throw e;
        await this.limiter.recordFailure(ctx?.clientIp, undefined);
        this.refuse(
          startedAt,
          'bad_credentials',
          'UNAUTHORIZED',
          {},
          { ...details, tokenRejection: e.reason },
        );
        throw this.unauthorized('bad_credentials');
      }
      const check = await this.keys.checkById(accessKeyId, memberId);
      if (!check.ok) {
        await this.limiter.recordFailure(ctx?.clientIp, check.member?.username);
        this.refuse(
          startedAt,
          check.reason,
          'UNAUTHORIZED',
          { memberId: check.member?.id, username: check.member?.username },
          {
            ...details,
            accessKeyId,
          },
        );
        throw this.unauthorized(check.reason);
      }
      return check;
    }

    if (!attempted || !request.password) {
      // No credentials at all is not a guess: refuse without counting a failure.
      this.refuse(startedAt, 'credentials_missing', 'UNAUTHORIZED', { username: attempted }, details);
      throw this.unauthorized(
        'credentials_missing',
        'authentication required: log in with your username and access key',
      );
    }
    const check = await this.keys.check(attempted, request.password);
    if (!check.ok) {
      await this.limiter.recordFailure(ctx?.clientIp, attempted);
      this.refuse(
        startedAt,
        check.reason,
        'UNAUTHORIZED',
        { memberId: check.member?.id, username: attempted },
        {
          ...details,
          accessKeyId: check.accessKey?.id ?? null,
        },
      );
      throw this.unauthorized(check.reason);
    }
    return check;
  }

  /** The token endpoint's 401: one message whatever the reason, with the Basic challenge. */
  unauthorized(reason: RefusalReason | 'insufficient_scope', message = GENERIC_UNAUTHORIZED): OciError {
    return new OciError('UNAUTHORIZED', {
      message,
      headers: { 'WWW-Authenticate': buildBasicChallenge(this.config.registry.service) },
      reason,
    });
  }

  /**
   * A login the database could not answer is a refusal too: audited (the row waits in the audit
   * queue until the database is back) and answered 503 UNAVAILABLE; other errors pass unchanged.
   */
  private auditedIfUnavailable(
    error: unknown,
    startedAt: number,
    who: { memberId?: string | null; username?: string | null },
    details: Record<string, unknown>,
  ): unknown {
    const unavailable = databaseUnavailableOciError(error);
    if (!unavailable) return error;
    this.refuse(startedAt, 'database_unavailable', 'UNAVAILABLE', who, details);
    return unavailable;
  }

  /** Audits a refusal; `code` is the OciError's the caller throws, so the row has its status. */
  private refuse(
    startedAt: number,
    reason: RefusalReason,
    code: OciErrorCode,
    who: { memberId?: string | null; username?: string | null },
    details: Record<string, unknown>,
  ): void {
    recordAuthEvent(this.audit, {
      action: 'token.refuse',
      outcome: 'denied',
      reason,
      httpStatus: OCI_ERROR_CODES[code].status,
      memberId: who.memberId ?? null,
      username: who.username ?? null,
      startedAt,
      details: { ...details, scopesGranted: [] },
    });
  }
}

/** Username and password of a Basic header; the password may contain colons, the username may not. */
export function parseBasic(header: string | undefined): { username: string; password: string } | null {
  if (!header) return null;
  const match = /^Basic\s+([A-Za-z0-9+/=_-]+)\s*$/i.exec(header);
  if (!match) return null;
  const decoded = Buffer.from(match[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return null;
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

function values(params: TokenParams, name: string): string[] {
  const v = params[name];
  if (typeof v === 'string') return [v];
  if (Array.isArray(v)) return v.filter((x): x is string => typeof x === 'string');
  return [];
}

function single(params: TokenParams, name: string): string | undefined {
  const all = values(params, name);
  return all.length > 0 ? all[0] : undefined;
}
