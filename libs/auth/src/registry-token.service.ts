import { randomUUID } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { errors as joseErrors, JWTPayload, jwtVerify, SignJWT } from 'jose';
import { LRUCache } from 'lru-cache';
import { GatewayConfig } from '@gatehouse/config';
import { Clock } from '@gatehouse/observability';
import { ScopeGrant } from './scope.util';
import { TOKEN_ALGORITHM, TokenSigningKey } from './token-signing-key';

/** Seconds of clock difference tolerated between the gateway and itself across restarts/replicas. */
export const CLOCK_SKEW_SECONDS = 30;
/**
 * Access tokens whose signature and claims were verified, kept by their exact string. Every /v2/
 * request carries one and a client reuses it for minutes: the ES256 check is the largest fixed
 * cost of a warm request. Oldest entries go first when full.
 */
export const VERIFIED_TOKEN_CACHE_MAX = 10_000;
/** Refresh tokens live this long at most, and never beyond their access key's expiry. */
export const REFRESH_TOKEN_TTL_SECONDS = 30 * 86_400;

export type TokenUse = 'access' | 'refresh';

export interface TokenSubject {
  memberId: string;
  username: string;
  accessKeyId: string;
}

export interface VerifiedToken extends TokenSubject {
  jti: string;
  issuedAt: Date;
  expiresAt: Date;
  access: ScopeGrant[];
}

export interface SignedToken {
  token: string;
  issuedAt: Date;
  expiresIn: number;
  expiresAt: Date;
}

export type TokenRejection =
  | 'token_malformed'
  | 'token_algorithm'
  | 'token_signature'
  | 'token_expired'
  | 'token_not_yet_valid'
  | 'token_audience'
  | 'token_issuer'
  | 'token_use'
  | 'token_claims';

export class TokenVerificationError extends Error {
  constructor(readonly reason: TokenRejection) {
    super(`token refused: ${reason}`);
    this.name = 'TokenVerificationError';
  }
}

/**
 * Mints and verifies the gateway's JWTs. Verification pins the algorithm (ES256 only, so
 * `alg: none` and HS256-signed-with-the-public-key are refused), the issuer, the audience
 * (OCI_REGISTRY_SERVICE), expiry and not-before with a small skew, and the token's use, so a
 * refresh token is never accepted as an access token or the other way round.
 */
@Injectable()
export class RegistryTokenService {
  /** Access tokens verified before, least recently used dropped first. */
  private readonly verifiedAccess = new LRUCache<string, { token: VerifiedToken; notBeforeMs: number }>({
    max: VERIFIED_TOKEN_CACHE_MAX,
  });

  constructor(
    private readonly key: TokenSigningKey,
    private readonly config: GatewayConfig,
    private readonly clock: Clock,
  ) {}

  get kid(): string {
    return this.key.kid;
  }

  signAccessToken(subject: TokenSubject, access: ScopeGrant[]): Promise<SignedToken> {
    return this.sign('access', subject, this.config.auth.tokenTtlSeconds, { access });
  }

  /** `notAfter` (the key's expiry) caps the refresh token's lifetime. */
  signRefreshToken(subject: TokenSubject, notAfter: Date | null): Promise<SignedToken> {
    let ttl = REFRESH_TOKEN_TTL_SECONDS;
    if (notAfter) ttl = Math.min(ttl, Math.floor((notAfter.getTime() - this.clock.now()) / 1000));
    return this.sign('refresh', subject, Math.max(ttl, 1), {});
  }

  /**
   * Verifies signature, algorithm, issuer, audience, times and use. An access token verified
   * before is answered from memory while its time window (with the skew) holds: the string is
   * the signed content, so the answer cannot differ. Member, key and entitlement state are not
   * part of this answer; RegistryAuthService checks them on every request.
   */
  async verify(token: string, use: TokenUse): Promise<VerifiedToken> {
    if (use === 'access') {
      const hit = this.verifiedAccess.get(token);
      if (hit) {
        const nowMs = this.clock.now();
        const skewMs = CLOCK_SKEW_SECONDS * 1000;
        if (nowMs < hit.token.expiresAt.getTime() + skewMs && nowMs >= hit.notBeforeMs - skewMs)
          return hit.token;
        // Out of its window now: verify in full, which gives the precise reason.
        this.verifiedAccess.delete(token);
      }
    }
    const verified = await this.verifyInFull(token, use);
    if (use === 'access') this.verifiedAccess.set(token, verified);
    return verified.token;
  }

  private async verifyInFull(
    token: string,
    use: TokenUse,
  ): Promise<{ token: VerifiedToken; notBeforeMs: number }> {
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, this.key.publicKey, {
        algorithms: [TOKEN_ALGORITHM],
        issuer: this.config.auth.issuer,
        audience: this.config.registry.service,
        clockTolerance: CLOCK_SKEW_SECONDS,
        currentDate: this.clock.date(),
        requiredClaims: ['sub', 'exp', 'iat', 'nbf', 'jti'],
      }));
    } catch (e) {
      throw new TokenVerificationError(classify(e));
    }
    if (payload.token_use !== use) throw new TokenVerificationError('token_use');
    const { sub, username, akid, jti, iat, nbf, exp, access } = payload;
    if (
      typeof sub !== 'string' ||
      typeof username !== 'string' ||
      typeof akid !== 'string' ||
      typeof jti !== 'string'
    ) {
      throw new TokenVerificationError('token_claims');
    }
    return {
      token: {
        memberId: sub,
        username,
        accessKeyId: akid,
        jti,
        issuedAt: new Date((iat ?? 0) * 1000),
        expiresAt: new Date((exp ?? 0) * 1000),
        access: use === 'access' ? parseAccessClaim(access) : [],
      },
      notBeforeMs: (nbf ?? 0) * 1000,
    };
  }

  private async sign(
    use: TokenUse,
    subject: TokenSubject,
    ttlSeconds: number,
    extra: Record<string, unknown>,
  ): Promise<SignedToken> {
    const nowMs = this.clock.now();
    const iat = Math.floor(nowMs / 1000);
    const exp = iat + ttlSeconds;
    const token = await new SignJWT({
      ...extra,
      username: subject.username,
      akid: subject.accessKeyId,
      token_use: use,
    })
      .setProtectedHeader({ alg: TOKEN_ALGORITHM, typ: 'JWT', kid: this.key.kid })
      .setIssuer(this.config.auth.issuer)
      .setSubject(subject.memberId)
      .setAudience(this.config.registry.service)
      .setIssuedAt(iat)
      .setNotBefore(iat)
      .setExpirationTime(exp)
      .setJti(randomUUID())
      .sign(this.key.privateKey);
    return { token, issuedAt: new Date(iat * 1000), expiresIn: ttlSeconds, expiresAt: new Date(exp * 1000) };
  }
}

function parseAccessClaim(value: unknown): ScopeGrant[] {
  if (!Array.isArray(value)) throw new TokenVerificationError('token_claims');
  return value.map((entry) => {
    const e = entry as Partial<ScopeGrant>;
    if (typeof e.type !== 'string' || typeof e.name !== 'string' || !Array.isArray(e.actions)) {
      throw new TokenVerificationError('token_claims');
    }
    return {
      type: e.type,
      name: e.name,
      actions: e.actions.filter((a): a is string => typeof a === 'string'),
    };
  });
}

function classify(e: unknown): TokenRejection {
  if (e instanceof joseErrors.JWTExpired) return 'token_expired';
  if (e instanceof joseErrors.JWTClaimValidationFailed) {
    if (e.claim === 'nbf' || e.claim === 'iat') return 'token_not_yet_valid';
    if (e.claim === 'aud') return 'token_audience';
    if (e.claim === 'iss') return 'token_issuer';
    return 'token_claims';
  }
  if (e instanceof joseErrors.JOSEAlgNotAllowed || e instanceof joseErrors.JOSENotSupported)
    return 'token_algorithm';
  if (e instanceof joseErrors.JWSSignatureVerificationFailed) return 'token_signature';
  return 'token_malformed';
}
