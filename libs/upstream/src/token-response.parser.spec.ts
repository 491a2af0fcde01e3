import {
  DEFAULT_TOKEN_LIFETIME_MS,
  jwtExpiry,
  parseTokenResponse,
  TokenResponseError,
  tokenUsableUntil,
} from './token-response.parser';

function jwt(payload: object): string {
  const enc = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${enc({ alg: 'HS256', typ: 'JWT' })}.${enc(payload)}.c2lnbmF0dXJl`;
}

const NOW = 1_700_000_000_000;

describe('parseTokenResponse', () => {
  it("accepts Forgejo's token-only answer and reads the JWT's exp", () => {
    const token = jwt({ exp: NOW / 1000 + 86_400, UserID: 3 });
    expect(parseTokenResponse({ token }, NOW)).toEqual({
      token,
      expiresAt: NOW + 86_400_000,
      lifetimeSource: 'jwt_exp',
    });
  });

  it('prefers access_token and expires_in (Docker token spec)', () => {
    const r = parseTokenResponse(
      { token: 'a', access_token: 'b', expires_in: 300, issued_at: '2001-01-01T00:00:00Z' },
      NOW,
    );
    expect(r).toEqual({ token: 'b', expiresAt: NOW + 300_000, lifetimeSource: 'expires_in' });
  });

  it('falls back to 60 s for an opaque token without expires_in', () => {
    expect(parseTokenResponse({ token: 'opaque' }, NOW)).toEqual({
      token: 'opaque',
      expiresAt: NOW + DEFAULT_TOKEN_LIFETIME_MS,
      lifetimeSource: 'default',
    });
  });

  it('ignores a JWT exp already in the past (clock skew) and uses 60 s', () => {
    expect(parseTokenResponse({ token: jwt({ exp: NOW / 1000 - 10 }) }, NOW).lifetimeSource).toBe('default');
  });

  it.each([[null], [[]], ['str'], [{}], [{ token: '' }], [{ access_token: 5 }]])('rejects %j', (body) => {
    expect(() => parseTokenResponse(body, NOW)).toThrow(TokenResponseError);
  });
});

describe('jwtExpiry', () => {
  it('reads exp in ms and returns null for non-JWTs', () => {
    expect(jwtExpiry(jwt({ exp: 10 }))).toBe(10_000);
    expect(jwtExpiry(jwt({ sub: 'x' }))).toBeNull();
    expect(jwtExpiry('a.b')).toBeNull();
    expect(jwtExpiry('a.!!!.c')).toBeNull();
  });
});

describe('tokenUsableUntil', () => {
  it('stops using a long-lived token 30 s before expiry', () => {
    expect(
      tokenUsableUntil({ token: 't', expiresAt: NOW + 86_400_000, lifetimeSource: 'jwt_exp' }, NOW),
    ).toBe(NOW + 86_400_000 - 30_000);
  });

  it('keeps at least half the lifetime of a short token', () => {
    expect(tokenUsableUntil({ token: 't', expiresAt: NOW + 40_000, lifetimeSource: 'expires_in' }, NOW)).toBe(
      NOW + 20_000,
    );
  });
});
