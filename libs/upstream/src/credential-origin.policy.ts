/**
 * Where the service credentials may go. The Basic credentials (username + FORGEJO_API_TOKEN) and
 * the tokens minted from them are sent to FORGEJO_BASE_URL's origin and to the token realm's
 * origin only: never to a storage origin a blob redirect points at (S3 rejects a second auth
 * mechanism, and a presigned URL must not learn the token), nor to a Link target elsewhere.
 */
export class CredentialOriginPolicy {
  readonly baseOrigin: string;
  private readonly realmOrigins = new Set<string>();

  constructor(baseUrl: string) {
    this.baseOrigin = new URL(baseUrl).origin;
  }

  /**
   * Accepts a realm announced by the upstream's challenge. Refused when it would send the
   * credentials in clear text while FORGEJO_BASE_URL uses TLS, or when it is not http(s).
   */
  admitRealm(realm: string): { ok: true; origin: string } | { ok: false; why: string } {
    let url: URL;
    try {
      url = new URL(realm);
    } catch {
      return { ok: false, why: 'the realm is not an absolute URL' };
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      return { ok: false, why: `the realm uses ${url.protocol} instead of http(s)` };
    }
    if (url.origin !== this.baseOrigin && url.protocol === 'http:' && this.baseOrigin.startsWith('https:')) {
      return {
        ok: false,
        why: 'the realm would receive the credentials over plain http while FORGEJO_BASE_URL uses https',
      };
    }
    if (url.username || url.password) return { ok: false, why: 'the realm carries user info' };
    this.realmOrigins.add(url.origin);
    return { ok: true, origin: url.origin };
  }

  /** Basic credentials: the registry itself (Basic-auth registries) and admitted realms. */
  mayReceiveCredentials(url: string | URL): boolean {
    const origin = new URL(url).origin;
    return origin === this.baseOrigin || this.realmOrigins.has(origin);
  }

  /** Registry tokens and registry requests: the registry origin only. */
  mayReceiveRegistryToken(url: string | URL): boolean {
    return new URL(url).origin === this.baseOrigin;
  }
}
