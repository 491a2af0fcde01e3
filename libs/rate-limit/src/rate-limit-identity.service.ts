import { Injectable } from '@nestjs/common';
import { RegistryTokenService, TokenVerificationError } from '@gatehouse/auth';
import { Clock } from '@gatehouse/observability';

/** Whom a request counts against: a member proven by a valid token, or else its client IP. */
export type RateLimitIdentity =
  { kind: 'member'; memberId: string; username: string } | { kind: 'anonymous'; ip: string };

interface VerifiedEntry {
  memberId: string;
  username: string;
  expiresAtMs: number;
}

/** Verified tokens remembered at most; a client reuses one token for every request of a pull. */
const MAX_REMEMBERED = 10_000;

/**
 * Works out the rate-limit identity of a /v2/ request before the pull path authenticates it.
 *
 * The token's signature, issuer, audience and lifetime are verified (the same checks as the
 * pull path, `RegistryTokenService.verify`), because keying on an unverified `sub` would let
 * anyone spend another member's budget by forging a token with their id, or escape the
 * per-IP limit by inventing a fresh `sub` per request. Member and key state (revocation) is NOT
 * checked here: that costs a cache lookup the pull path makes anyway, and a revoked member's
 * requests are refused there whichever bucket they were counted in.
 *
 * Verified tokens are remembered until they expire, so the signature check runs once per token,
 * not once per blob.
 */
@Injectable()
export class RateLimitIdentityService {
  private readonly verified = new Map<string, VerifiedEntry>();

  constructor(
    private readonly tokens: RegistryTokenService,
    private readonly clock: Clock,
  ) {}

  async identify(authorization: string | undefined, ip: string): Promise<RateLimitIdentity> {
    const match = authorization ? /^Bearer\s+(\S+)\s*$/i.exec(authorization) : null;
    if (!match) return { kind: 'anonymous', ip };
    const token = match[1];
    const now = this.clock.now();
    const known = this.verified.get(token);
    if (known && known.expiresAtMs > now) {
      return { kind: 'member', memberId: known.memberId, username: known.username };
    }
    if (known) this.verified.delete(token);
    try {
      const v = await this.tokens.verify(token, 'access');
      this.remember(token, {
        memberId: v.memberId,
        username: v.username,
        expiresAtMs: v.expiresAt.getTime(),
      });
      return { kind: 'member', memberId: v.memberId, username: v.username };
    } catch (e) {
      // A bad token is an unauthenticated request; the pull path answers (and audits) the 401.
      if (e instanceof TokenVerificationError) return { kind: 'anonymous', ip };
      throw e;
    }
  }

  private remember(token: string, entry: VerifiedEntry): void {
    if (this.verified.size >= MAX_REMEMBERED) {
      const now = this.clock.now();
      for (const [t, e] of this.verified) if (e.expiresAtMs <= now) this.verified.delete(t);
      // Still full: forget the oldest (Map keeps insertion order).
      if (this.verified.size >= MAX_REMEMBERED)
        this.verified.delete(this.verified.keys().next().value as string);
    }
    this.verified.set(token, entry);
  }
}
