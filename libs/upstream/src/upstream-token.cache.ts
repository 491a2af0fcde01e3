import type { UpstreamConfig } from '@gatehouse/config';
import { AppLogger, Clock, MetricsService } from '@gatehouse/observability';
import { CredentialOriginPolicy } from './credential-origin.policy';
import { parseTokenResponse, TokenResponseError, tokenUsableUntil } from './token-response.parser';
import { UpstreamBodyReader } from './upstream-body.reader';
import { basicCredentials, safeLocation, USER_AGENT } from './upstream-exchange';
import { answerBase, classifyAnswerAsError, UpstreamFailureReporter } from './upstream-failure.reporter';
import { UpstreamTransport } from './upstream-transport';
import { UpstreamProtocolError } from './upstream.error';
import { BearerChallenge } from './www-authenticate.parser';

const TOKEN_RESPONSE_MAX_BYTES = 64 * 1024;

interface CachedToken {
  token: string;
  usableUntil: number;
}

export interface UpstreamToken {
  token: string;
  fromCache: boolean;
  /** The cache key, to drop the token when the registry refuses it. */
  key: string;
}

/**
 * Bearer tokens from the upstream's realm, fetched with the service credentials and cached per
 * (realm, service, scope) until shortly before they expire; concurrent callers share one fetch.
 */
export class UpstreamTokenCache {
  private readonly tokens = new Map<string, CachedToken>();
  private readonly flights = new Map<string, Promise<CachedToken>>();
  private readonly tokenFetches;

  constructor(
    private readonly config: UpstreamConfig,
    private readonly policy: CredentialOriginPolicy | null,
    private readonly transport: UpstreamTransport,
    private readonly body: UpstreamBodyReader,
    private readonly failures: UpstreamFailureReporter,
    private readonly clock: Clock,
    private readonly log: AppLogger,
    metrics: MetricsService,
  ) {
    this.tokenFetches = metrics.counter(
      'gatehouse_upstream_token_fetches_total',
      'Tokens fetched from the upstream realm',
      ['outcome'],
    );
  }

  /** A usable token for `scope` under `challenge`: cached unless `fresh`. */
  async token(
    challenge: BearerChallenge,
    scope: string | undefined,
    options: { fresh: boolean; signal?: AbortSignal },
  ): Promise<UpstreamToken> {
    const key = JSON.stringify([challenge.realm, challenge.service ?? '', scope ?? '']);
    const cached = this.tokens.get(key);
    if (!options.fresh && cached && this.clock.now() < cached.usableUntil) {
      return { token: cached.token, fromCache: true, key };
    }
    let flight = this.flights.get(key);
    if (!flight || options.fresh) {
      flight = this.fetchToken(challenge, scope, options.signal).finally(() => {
        if (this.flights.get(key) === flight) this.flights.delete(key);
      });
      this.flights.set(key, flight);
    }
    const entry = await flight;
    this.tokens.set(key, entry);
    return { token: entry.token, fromCache: false, key };
  }

  /** Forgets a token the registry refused. */
  invalidate(key: string): void {
    this.tokens.delete(key);
  }

  private async fetchToken(
    challenge: BearerChallenge,
    scope: string | undefined,
    signal: AbortSignal | undefined,
  ): Promise<CachedToken> {
    const url = new URL(challenge.realm);
    if (challenge.service) url.searchParams.set('service', challenge.service);
    if (scope) url.searchParams.append('scope', scope);
    const request = `GET ${safeLocation(url)}`;
    if (!this.policy!.mayReceiveCredentials(url)) {
      throw this.failures.fail(
        new UpstreamProtocolError(
          `Refusing to send the service credentials to ${safeLocation(url)}. Fix: check the realm the upstream announces.`,
          { request },
        ),
      );
    }
    const headers = {
      authorization: basicCredentials(this.config),
      accept: 'application/json',
      'user-agent': USER_AGENT,
    };
    const ex = await this.transport.getRealm(url, headers, signal);
    const receivedAt = this.clock.now();
    if (ex.status !== 200) {
      this.tokenFetches.inc({ outcome: String(ex.status) });
      const snippet = await this.body.snippet(ex);
      throw this.failures.fail(
        classifyAnswerAsError({ ...answerBase(ex, request, undefined), bodySnippet: snippet }),
      );
    }
    const json = await this.body.readJson(ex, TOKEN_RESPONSE_MAX_BYTES, request);
    try {
      const parsed = parseTokenResponse(json, receivedAt);
      this.tokenFetches.inc({ outcome: 'ok' });
      this.log.debug(
        { lifetimeSource: parsed.lifetimeSource, expiresAt: new Date(parsed.expiresAt).toISOString() },
        'Fetched an upstream token',
      );
      return { token: parsed.token, usableUntil: tokenUsableUntil(parsed, receivedAt) };
    } catch (err) {
      this.tokenFetches.inc({ outcome: 'malformed' });
      const why = err instanceof TokenResponseError ? err.message : 'unreadable answer';
      throw this.failures.fail(
        new UpstreamProtocolError(
          `The upstream token endpoint answered ${request} without a usable token (${why}). Fix: check the realm the upstream announces.`,
          { request, upstreamStatus: 200 },
        ),
      );
    }
  }
}
