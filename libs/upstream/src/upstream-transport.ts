import { setTimeout as sleep } from 'node:timers/promises';
import type { UpstreamConfig } from '@gatehouse/config';
import { AppLogger, MetricsService, RequestContext } from '@gatehouse/observability';
import { Agent, Dispatcher, request as undiciRequest } from 'undici';
import { CredentialOriginPolicy } from './credential-origin.policy';
import { errorCode, RetryPolicy } from './retry.policy';
import {
  Authorization,
  Exchange,
  first,
  HopError,
  RequestSpec,
  requestLine,
  safeLocation,
  USER_AGENT,
} from './upstream-exchange';
import { classifyNetworkError, UpstreamTarget } from './upstream-failure.classifier';
import { UpstreamFailureReporter } from './upstream-failure.reporter';
import type { UpstreamMemberTag } from './upstream-member-tag';
import { UpstreamProtocolError } from './upstream.error';

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 5;

/**
 * The HTTP hops to the upstream on undici: two keep-alive pools (the registry and its realm;
 * redirect targets such as blob storage, which never share connections nor receive
 * credentials), redirects, and bounded retries of idempotent requests.
 */
export class UpstreamTransport {
  private readonly requests;
  private readonly registryAgent: Agent;
  /** Redirect targets (blob storage): never shares connections, never receives credentials. */
  private readonly storageAgent: Agent;

  constructor(
    private readonly config: UpstreamConfig,
    private readonly baseUrl: string | null,
    private readonly policy: CredentialOriginPolicy | null,
    private readonly retry: RetryPolicy,
    private readonly failures: UpstreamFailureReporter,
    private readonly log: AppLogger,
    metrics: MetricsService,
    /** The member's opaque tag for an upstream Gatehouse (UPSTREAM_SEND_MEMBER_TAG). */
    private readonly memberTag?: UpstreamMemberTag,
  ) {
    this.requests = metrics.counter(
      'gatehouse_upstream_requests_total',
      'Requests sent to the upstream registry',
      ['method', 'status'],
    );
    const agentOptions: Agent.Options = {
      connections: config.maxConnections,
      connect: { timeout: config.connectTimeoutMs },
      headersTimeout: config.headersTimeoutMs,
      bodyTimeout: config.bodyTimeoutMs,
      keepAliveTimeout: 30_000,
    };
    this.registryAgent = new Agent(agentOptions);
    this.storageAgent = new Agent(agentOptions);
  }

  /** Closes the keep-alive pools (module shutdown). */
  async close(): Promise<void> {
    await Promise.all([this.registryAgent.close(), this.storageAgent.close()]);
  }

  /** One registry request with retries; redirects followed when the spec asks. */
  send(spec: RequestSpec, auth: Authorization): Promise<Exchange> {
    const basic = auth.header !== undefined && auth.kind === 'basic';
    const blocked = basic ? this.failures.backoff.blocked(requestLine(spec)) : null;
    if (blocked) return Promise.reject(blocked);
    return this.withRetries(
      spec.method,
      {
        request: requestLine(spec),
        target: 'registry',
        where: this.baseUrl!,
        signal: spec.signal,
        quiet: spec.quiet,
      },
      () => this.dispatch(spec, auth),
    ).then((ex) => this.noteCredentials(ex, basic));
  }

  /** A 401 to Basic starts or lengthens the credential backoff, as does a 429 after one; an accepted answer ends it. */
  private noteCredentials(ex: Exchange, basic: boolean): Exchange {
    if (basic && ex.status === 401) this.failures.backoff.refused();
    else if (basic && ex.status === 429) this.failures.backoff.limited();
    else if (ex.status < 400) this.failures.backoff.accepted();
    return ex;
  }

  /** A GET to the token realm (Basic credentials in `headers`), with retries. */
  getRealm(url: URL, headers: Record<string, string>, signal: AbortSignal | undefined): Promise<Exchange> {
    const blocked = this.failures.backoff.blocked(`GET ${safeLocation(url)}`);
    if (blocked) return Promise.reject(blocked);
    return this.withRetries(
      'GET',
      { request: `GET ${safeLocation(url)}`, target: 'realm', where: safeLocation(url), signal },
      async () => {
        try {
          const res = await undiciRequest(url, {
            method: 'GET',
            headers: { ...headers, ...this.correlation('realm') },
            dispatcher: this.registryAgent,
            signal,
          });
          return {
            status: res.statusCode,
            headers: res.headers,
            body: res.body,
            url,
            target: 'realm' as const,
            sentAuth: 'basic' as const,
          };
        } catch (err) {
          throw new HopError(err, 'realm', url);
        }
      },
    ).then((ex) => this.noteCredentials(ex, true));
  }

  private async dispatch(spec: RequestSpec, auth: Authorization): Promise<Exchange> {
    let url = new URL(spec.path, `${this.baseUrl}/`);
    let method: 'GET' | 'HEAD' = spec.method;
    // Forgejo 11 puts Docker-Content-Digest on its 307 and storage never does: keep it for verification.
    let redirectDigest: string | undefined;
    for (let hop = 0; ; hop++) {
      const target: UpstreamTarget = url.origin === this.policy!.baseOrigin ? 'registry' : 'storage';
      const headers: Record<string, string> = { 'user-agent': USER_AGENT, ...this.correlation(target) };
      if (spec.accept) headers.accept = spec.accept;
      if (spec.range) headers.range = spec.range;
      const withCredentials = auth.header !== undefined && this.policy!.mayReceiveRegistryToken(url);
      if (withCredentials) headers.authorization = auth.header!;
      let res: Dispatcher.ResponseData;
      try {
        res = await undiciRequest(url, {
          method,
          headers,
          dispatcher: target === 'registry' ? this.registryAgent : this.storageAgent,
          signal: spec.signal,
        });
      } catch (err) {
        throw new HopError(err, target, url);
      }
      this.requests.inc({ method, status: String(res.statusCode) });
      const location = first(res.headers.location);
      if (spec.followRedirects && REDIRECT_STATUSES.has(res.statusCode) && location) {
        await res.body.dump().catch(() => undefined);
        redirectDigest = first(res.headers['docker-content-digest']) ?? redirectDigest;
        const next = new URL(location, url);
        if (hop >= MAX_REDIRECTS || (next.protocol !== 'http:' && next.protocol !== 'https:')) {
          throw this.failures.fail(
            new UpstreamProtocolError(
              `The upstream redirected ${requestLine(spec)} too often or to a non-http location (${next.protocol}). Fix: check the upstream's storage redirect settings.`,
              { request: requestLine(spec), upstreamStatus: res.statusCode },
            ),
          );
        }
        if (res.statusCode === 303) method = method === 'HEAD' ? 'HEAD' : 'GET';
        this.log.debug(
          { from: safeLocation(url), to: safeLocation(next), status: res.statusCode },
          'Following an upstream redirect',
        );
        url = next;
        continue;
      }
      const finalHeaders =
        redirectDigest && res.headers['docker-content-digest'] === undefined
          ? { ...res.headers, 'docker-content-digest': redirectDigest }
          : res.headers;
      return {
        status: res.statusCode,
        headers: finalHeaders,
        body: res.body,
        url,
        target,
        sentAuth: withCredentials ? auth.kind : 'none',
      };
    }
  }

  /** Runs `attempt` with bounded retries (idempotent methods; connection errors and 5xx only). */
  private async withRetries(
    method: 'GET' | 'HEAD',
    ctx: { request: string; target: UpstreamTarget; where: string; signal?: AbortSignal; quiet?: boolean },
    attempt: () => Promise<Exchange>,
  ): Promise<Exchange> {
    for (let n = 0; ; n++) {
      let ex: Exchange;
      try {
        ex = await attempt();
      } catch (err) {
        if (!(err instanceof HopError)) throw err;
        if (ctx.signal?.aborted) throw ctx.signal.reason ?? err.original;
        if (this.retry.shouldRetryError(method, err.original, n)) {
          this.log.debug(
            { code: errorCode(err.original), attempt: n + 1 },
            `Retrying ${ctx.request} after a connection error`,
          );
          await sleep(this.retry.delayMs(n), undefined, { signal: ctx.signal });
          continue;
        }
        const classified = classifyNetworkError(err.original, {
          request: ctx.request,
          target: err.target,
          where: err.target === 'storage' ? err.url.origin : ctx.where,
          timeouts: this.config,
        });
        throw ctx.quiet ? classified : this.failures.fail(classified);
      }
      if (this.retry.shouldRetryStatus(method, ex.status, n)) {
        await ex.body.dump().catch(() => undefined);
        this.log.debug({ status: ex.status, attempt: n + 1 }, `Retrying ${ctx.request} after a ${ex.status}`);
        await sleep(this.retry.delayMs(n), undefined, { signal: ctx.signal });
        continue;
      }
      return ex;
    }
  }

  /** The request id, and the member tag when it is sent (see correlation and UpstreamMemberTag). */
  private correlation(target: UpstreamTarget): Record<string, string> {
    return { ...correlation(target), ...this.memberTag?.headers(target) };
  }
}

/**
 * This gateway's request id as `X-Request-Id` to the upstream origin and its realm (never to a
 * storage origin): an upstream Gatehouse records it as the row's `client_request_id`, so support
 * there finds this gateway's request and support here can quote the upstream's.
 */
function correlation(target: UpstreamTarget): Record<string, string> {
  const id = target === 'storage' ? undefined : RequestContext.current()?.requestId;
  return id ? { 'x-request-id': id } : {};
}
