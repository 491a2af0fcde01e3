/**
 * Token endpoint answers. Forgejo returns only `{"token":"<jwt>"}` (a 24 h JWT, no
 * `expires_in`); the Docker token spec adds `access_token`, `expires_in` and `issued_at`.
 */
export interface UpstreamToken {
  token: string;
  /** Epoch ms after which the upstream considers the token expired. */
  expiresAt: number;
  /** Where the lifetime came from, for debugging a token that expires too early. */
  lifetimeSource: 'expires_in' | 'jwt_exp' | 'default';
}

/** The Docker token spec: a client must assume 60 s when the server says nothing. */
export const DEFAULT_TOKEN_LIFETIME_MS = 60_000;
/** Stop using a token this long before it expires, so it never expires in flight. */
export const TOKEN_EXPIRY_MARGIN_MS = 30_000;

export class TokenResponseError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TokenResponseError';
  }
}

/** Reads `exp` (seconds) from a JWT payload without verifying it; null when not a readable JWT. */
export function jwtExpiry(token: string): number | null {
  const parts = token.split('.');
  if (parts.length !== 3) return null;
  try {
    const payload = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8')) as { exp?: unknown };
    return typeof payload.exp === 'number' && Number.isFinite(payload.exp) ? payload.exp * 1000 : null;
  } catch {
    return null;
  }
}

export function parseTokenResponse(body: unknown, now: number): UpstreamToken {
  if (!body || typeof body !== 'object' || Array.isArray(body)) {
    throw new TokenResponseError('the token endpoint did not answer with a JSON object');
  }
  const b = body as Record<string, unknown>;
  const token =
    typeof b.access_token === 'string' && b.access_token
      ? b.access_token
      : typeof b.token === 'string' && b.token
        ? b.token
        : null;
  if (!token)
    throw new TokenResponseError('the token endpoint answer has neither "token" nor "access_token"');

  const expiresIn = typeof b.expires_in === 'number' ? b.expires_in : Number(b.expires_in);
  // The lifetime counts from when we received it: issued_at is the server's clock, which may be skewed.
  if (b.expires_in !== undefined && Number.isFinite(expiresIn) && expiresIn > 0) {
    return { token, expiresAt: now + expiresIn * 1000, lifetimeSource: 'expires_in' };
  }
  const exp = jwtExpiry(token);
  if (exp !== null && exp > now) return { token, expiresAt: exp, lifetimeSource: 'jwt_exp' };
  return { token, expiresAt: now + DEFAULT_TOKEN_LIFETIME_MS, lifetimeSource: 'default' };
}

/**
 * The instant after which a cached token is no longer handed out: expiry minus the margin, but
 * never less than half the lifetime, so a 60 s token is still reused for 30 s.
 */
export function tokenUsableUntil(
  token: UpstreamToken,
  receivedAt: number,
  marginMs = TOKEN_EXPIRY_MARGIN_MS,
): number {
  const lifetime = Math.max(0, token.expiresAt - receivedAt);
  return token.expiresAt - Math.min(marginMs, lifetime / 2);
}
