import { jwtVerify, SignJWT } from 'jose';
import { AuthResult, FrontContext, GHOST_USER_ID, PAT_RE, Principal } from './forgejo-front.context';
import { FrontRequestRecord } from './forgejo-front.types';

/** Forgejo's auth: PATs (Basic), the registry JWTs it mints, owner permissions and scopes. */
export function frontAuth(ctx: FrontContext) {
  const { tokens, userId, userNames, options } = ctx;

  const principalForPat = (pat: string): Principal | undefined => {
    if (!PAT_RE.test(pat)) return undefined;
    const t = tokens.get(pat);
    if (!t || t.revoked) return undefined;
    const user = t.user ?? 'gatehouse-service';
    return { userId: userId(user), user, scopes: [...t.scopes] };
  };

  const mint = async (p: Principal): Promise<string> => {
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({ UserID: p.userId, Scope: (p.scopes ?? []).join(',') })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setNotBefore(now)
      .setExpirationTime(now + ctx.jwtTtl)
      .sign(ctx.jwtSecret);
  };

  const principalForJwt = async (jwt: string): Promise<Principal | undefined> => {
    try {
      const { payload } = await jwtVerify(jwt, ctx.jwtSecret, { algorithms: ['HS256'] });
      const id = Number(payload.UserID);
      const scope = typeof payload.Scope === 'string' ? payload.Scope : '';
      const user = id === GHOST_USER_ID ? 'ghost' : userNames.get(id);
      if (user === undefined) return undefined;
      return { userId: id, user, scopes: scope === '' ? undefined : scope.split(',') };
    } catch {
      return undefined;
    }
  };

  const basicSecret = (header: string): string | undefined => {
    try {
      const decoded = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      const user = colon < 0 ? decoded : decoded.slice(0, colon);
      const pass = colon < 0 ? '' : decoded.slice(colon + 1);
      // Forgejo: an empty password (or x-oauth-basic) means the username is the token.
      return pass === '' || pass === 'x-oauth-basic' ? user : pass;
    } catch {
      return undefined;
    }
  };

  /** auth.Basic (only on paths under /v2/, so not on the ping) then container.Auth. */
  const authenticate = async (header: string | undefined, path: string): Promise<AuthResult> => {
    if (!header) return { kind: 'none' };
    if (/^basic /i.test(header) && path.startsWith('/v2/')) {
      const secret = basicSecret(header);
      const p = secret === undefined ? undefined : principalForPat(secret);
      return p ? { kind: 'user', principal: p } : { kind: 'error' };
    }
    const space = header.indexOf(' ');
    if (space < 0) return { kind: 'none' };
    const p = await principalForJwt(header.slice(space + 1).trim());
    return p ? { kind: 'user', principal: p } : { kind: 'error' };
  };

  const authKind = (header: string | undefined): FrontRequestRecord['auth'] => {
    if (!header) return 'none';
    if (/^basic /i.test(header)) return 'basic';
    if (/^bearer /i.test(header)) return 'bearer';
    return 'other';
  };

  const canRead = (p: Principal, owner: { name: string; private: boolean }): boolean => {
    if (p.userId === GHOST_USER_ID) return !owner.private;
    const allowed = options.userOwners?.[p.user];
    return allowed === undefined || allowed.some((o) => o.toLowerCase() === owner.name.toLowerCase());
  };

  const hasReadPackage = (scopes: string[]): boolean =>
    scopes.some((s) => s === 'all' || s === 'read:package' || s === 'write:package');

  return { principalForPat, mint, authenticate, authKind, canRead, hasReadPackage };
}

export type FrontAuth = ReturnType<typeof frontAuth>;
