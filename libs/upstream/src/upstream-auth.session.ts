import type { UpstreamConfig } from '@gatehouse/config';
import { AppLogger } from '@gatehouse/observability';
import { CredentialOriginPolicy } from './credential-origin.policy';
import { Authorization, basicCredentials, Exchange, RequestSpec, requestLine } from './upstream-exchange';
import { answerBase, classifyAnswerAsError, UpstreamFailureReporter } from './upstream-failure.reporter';
import type { UpstreamKindState } from './upstream-kind';
import { UpstreamTokenCache } from './upstream-token.cache';
import { UpstreamTransport } from './upstream-transport';
import { UpstreamProtocolError, UpstreamUnavailableError } from './upstream.error';
import {
  BearerChallenge,
  findBasicChallenge,
  findBearerChallenge,
  parseWwwAuthenticate,
} from './www-authenticate.parser';

export type UpstreamAuthMode = 'unknown' | 'none' | 'basic' | 'bearer';

/**
 * How the gateway authenticates to the upstream, and the authenticated request.
 *
 * Auth is discovered by an anonymous `GET /v2/` (Forgejo pings are never sent Basic credentials:
 * Forgejo answers those with 401 authGroup.Verify). A Bearer challenge makes requests carry
 * tokens from the realm (UpstreamTokenCache); a Basic challenge makes them carry Basic
 * credentials to the registry origin only. A 401 on a cached token, or a challenge asking for
 * another scope, gets one fresh token.
 */
export class UpstreamAuthSession {
  private currentMode: UpstreamAuthMode = 'unknown';
  private bearer: BearerChallenge | null = null;
  private discovering: Promise<void> | null = null;
  private warnedRealmOrigin = false;

  constructor(
    private readonly config: UpstreamConfig,
    private readonly baseUrl: string | null,
    private readonly policy: CredentialOriginPolicy | null,
    private readonly transport: UpstreamTransport,
    private readonly tokens: UpstreamTokenCache,
    private readonly failures: UpstreamFailureReporter,
    private readonly log: AppLogger,
    /** Learns the upstream's kind from the ping's answer (UPSTREAM_KIND unset). */
    private readonly kind?: UpstreamKindState,
  ) {}

  get enabled(): boolean {
    return this.config.enabled && this.baseUrl !== null && this.config.token !== null;
  }

  /** The scheme learnt from the last discovery. */
  get mode(): UpstreamAuthMode {
    return this.currentMode;
  }

  assertConfigured(): void {
    if (!this.enabled) {
      throw this.failures.fail(
        new UpstreamUnavailableError(
          'not_configured',
          `The upstream is not configured: ${this.config.missing.join(' and ') || 'FORGEJO_BASE_URL / FORGEJO_API_TOKEN'} not set. ` +
            (this.config.kind === 'gatehouse'
              ? "Fix: set FORGEJO_BASE_URL to the upstream Gatehouse's root URL, FORGEJO_API_USERNAME to this " +
                "gateway's member there and FORGEJO_API_TOKEN to that member's access key."
              : 'Fix: set FORGEJO_BASE_URL to the Forgejo root URL and FORGEJO_API_TOKEN to a token with scope read:package.'),
        ),
      );
    }
  }

  /**
   * One logical request: authenticate, retry transient failures, refresh a cached token once on
   * a 401, follow redirects (dropping credentials off the registry origin). Returns the final
   * answer, whatever its status; callers decide what is success.
   */
  async send(spec: RequestSpec): Promise<Exchange> {
    this.assertConfigured();
    if (!spec.anonymous) await this.discover();
    const request = requestLine(spec);
    let refreshed = false;
    let scopeOverride: string | undefined;
    for (;;) {
      const auth = await this.authorization(spec, refreshed, scopeOverride);
      const ex = await this.transport.send(spec, auth);
      if (ex.status !== 401 || ex.target !== 'registry' || refreshed || spec.anonymous) return ex;

      const challenges = parseWwwAuthenticate(ex.headers['www-authenticate']);
      const bearer = findBearerChallenge(challenges);
      const basic = findBasicChallenge(challenges);
      if (auth.kind === 'none' && (bearer || basic)) {
        // The registry wants credentials where the ping did not (or the scheme changed).
        if (bearer) {
          this.learnBearer(bearer, request);
          this.currentMode = 'bearer';
        } else {
          this.currentMode = 'basic';
        }
      } else if (auth.kind === 'bearer' && !basic && bearer?.error !== 'insufficient_scope') {
        // An expired or revoked cached token, or a registry that wants another scope: one fresh token.
        const wantsOtherScope = bearer?.scope !== undefined && bearer.scope !== this.scopeFor(spec);
        if (!auth.fromCache && !wantsOtherScope) return ex;
        if (bearer && wantsOtherScope) scopeOverride = bearer.scope;
        if (auth.tokenKey) this.tokens.invalidate(auth.tokenKey);
      } else {
        return ex;
      }
      refreshed = true;
      await ex.body.dump().catch(() => undefined);
    }
  }

  /** A fresh token for the ping scope, bypassing the cache (readiness: a revoked token shows at once). */
  async freshPingToken(signal: AbortSignal | undefined): Promise<void> {
    await this.tokens.token(this.bearer!, this.scopeFor({ method: 'GET', path: '/v2/' }), {
      fresh: true,
      signal,
    });
  }

  /** Learns the auth scheme from an anonymous ping, once (concurrent callers share it). */
  async discover(force = false): Promise<void> {
    if (this.currentMode !== 'unknown' && !force) return;
    if (!this.discovering) {
      this.discovering = this.ping().finally(() => {
        this.discovering = null;
      });
    }
    await this.discovering;
  }

  private async ping(): Promise<void> {
    // No caller's signal: the discovery is shared, and one caller giving up must not fail the others.
    const ex = await this.send({ method: 'GET', path: '/v2/', anonymous: true });
    await ex.body.dump().catch(() => undefined);
    // A registry's own answer (not a proxy's 5xx) says what the upstream is.
    if (ex.status === 200 || ex.status === 401) this.kind?.observe(ex.headers);
    if (ex.status === 200) {
      this.currentMode = 'none';
      return;
    }
    if (ex.status === 401) {
      const request = 'GET /v2/';
      const challenges = parseWwwAuthenticate(ex.headers['www-authenticate']);
      const bearer = findBearerChallenge(challenges);
      if (bearer) {
        this.learnBearer(bearer, request);
        this.currentMode = 'bearer';
        return;
      }
      if (findBasicChallenge(challenges)) {
        this.currentMode = 'basic';
        return;
      }
      throw this.failures.fail(
        new UpstreamProtocolError(
          `The upstream registry answered ${request} with 401 but no Bearer or Basic challenge. Fix: check that FORGEJO_BASE_URL is the registry root and that no proxy strips WWW-Authenticate.`,
          { request, upstreamStatus: 401 },
        ),
      );
    }
    if (ex.status >= 500 || ex.status === 429) {
      throw this.failures.fail(
        classifyAnswerAsError({ ...answerBase(ex, 'GET /v2/', undefined), bodySnippet: '' }),
      );
    }
    throw this.failures.fail(
      new UpstreamProtocolError(
        `The upstream answered ${ex.status} to GET /v2/: FORGEJO_BASE_URL does not point at a registry. Fix: set FORGEJO_BASE_URL to the registry root (for Forgejo, its ROOT_URL without /v2).`,
        { request: 'GET /v2/', upstreamStatus: ex.status },
      ),
    );
  }

  private learnBearer(challenge: BearerChallenge, request: string): void {
    const admitted = this.policy!.admitRealm(challenge.realm);
    if (!admitted.ok) {
      throw this.failures.fail(
        new UpstreamProtocolError(
          `The upstream registry announced the token realm "${challenge.realm}", which the gateway refuses: ${admitted.why}. Fix: make the upstream announce an https realm on its own host (on Forgejo, set ROOT_URL).`,
          { request },
        ),
      );
    }
    if (admitted.origin !== this.policy!.baseOrigin && !this.warnedRealmOrigin) {
      this.warnedRealmOrigin = true;
      this.log.warn(
        { realm: challenge.realm },
        `The upstream token realm ${challenge.realm} is not on FORGEJO_BASE_URL's origin ${this.policy!.baseOrigin}; the service credentials are sent there too (on Forgejo the realm comes from ROOT_URL).`,
      );
    }
    this.bearer = { ...challenge };
  }

  /**
   * Forgejo's challenge says `scope="*"` and its tokens cover everything: one token serves all
   * repositories. Registries that challenge per repository get a token per repository.
   */
  private scopeFor(spec: RequestSpec): string | undefined {
    const challenged = this.bearer?.scope;
    if (challenged !== undefined && challenged !== '' && !challenged.startsWith('repository:'))
      return challenged;
    if (spec.scope !== undefined) return spec.scope;
    return spec.repository ? `repository:${spec.repository}:pull` : undefined;
  }

  private async authorization(
    spec: RequestSpec,
    forceFresh: boolean,
    scopeOverride?: string,
  ): Promise<Authorization> {
    if (spec.anonymous || this.currentMode === 'none' || this.currentMode === 'unknown')
      return { kind: 'none', fromCache: false };
    if (this.currentMode === 'basic')
      return { kind: 'basic', header: basicCredentials(this.config), fromCache: false };
    const scope = scopeOverride ?? this.scopeFor(spec);
    const { token, fromCache, key } = await this.tokens.token(this.bearer!, scope, {
      fresh: forceFresh,
      signal: spec.signal,
    });
    return { kind: 'bearer', header: `Bearer ${token}`, fromCache, tokenKey: key };
  }
}
