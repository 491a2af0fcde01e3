import { IncomingHttpHeaders } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { Injectable } from '@nestjs/common';
import { Agent, Dispatcher, request as undiciRequest } from 'undici';
import type { UpstreamConfig } from '@gatehouse/config';
import {
  computeDigest,
  digestAlgorithm,
  DigestMismatchError,
  isManifestMediaType,
  isSupportedDigest,
  isValidRepositoryName,
  isValidTag,
  MANIFEST_ACCEPT,
  MANIFEST_MAX_BYTES,
  OciError,
  parseManifest,
} from '@gatehouse/oci';
import { AppLogger, MetricsService, scrubSecrets } from '@gatehouse/observability';
import { CredentialOriginPolicy } from './credential-origin.policy';
import { nextLinkUrl } from './link-header.parser';
import { RetryPolicy, errorCode } from './retry.policy';
import { parseTokenResponse, TokenResponseError, tokenUsableUntil } from './token-response.parser';
import { Clock } from '@gatehouse/observability';
import {
  UpstreamError,
  UpstreamIntegrityError,
  UpstreamProtocolError,
  UpstreamUnavailableError,
} from './upstream.error';
import { classifyNetworkError, classifyUpstreamAnswer, UpstreamTarget } from './upstream-failure.classifier';
import {
  AccessCheckResult,
  UpstreamBlob,
  UpstreamClientOptions,
  UpstreamBlobHead,
  UpstreamManifest,
  UpstreamNotFound,
  UpstreamTagPage,
} from './upstream.types';
import { LengthCheckedStream, VerifiedBlobStream } from './verified-blob.stream';
import {
  BearerChallenge,
  findBasicChallenge,
  findBearerChallenge,
  parseWwwAuthenticate,
} from './www-authenticate.parser';

interface RequestSpec {
  method: 'GET' | 'HEAD';
  /** Path and query under FORGEJO_BASE_URL, e.g. `/v2/acme/app/tags/list?n=10`. */
  path: string;
  repository?: string;
  /** Token scope when no repository applies (catalog). */
  scope?: string;
  accept?: string;
  range?: string;
  signal?: AbortSignal;
  followRedirects?: boolean;
  /** No credentials at all (the ping that discovers the challenge). */
  anonymous?: boolean;
  /** Classify but do not log or count (an optional probe). */
  quiet?: boolean;
}

interface Exchange {
  status: number;
  headers: IncomingHttpHeaders;
  body: Dispatcher.ResponseData['body'];
  url: URL;
  target: UpstreamTarget;
  sentAuth: 'bearer' | 'basic' | 'none';
}

interface Authorization {
  header?: string;
  kind: 'bearer' | 'basic' | 'none';
  fromCache: boolean;
  tokenKey?: string;
}

interface CachedToken {
  token: string;
  usableUntil: number;
}

/** A network failure annotated with the hop it happened on (registry, realm or storage). */
class HopError extends Error {
  constructor(
    readonly original: unknown,
    readonly target: UpstreamTarget,
    readonly url: URL,
  ) {
    super('upstream hop failed', { cause: original });
  }
}

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 5;
const ERROR_SNIPPET_BYTES = 2048;
const TOKEN_RESPONSE_MAX_BYTES = 64 * 1024;
const USER_AGENT = 'gatehouse-upstream';

function first(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

function contentLength(headers: IncomingHttpHeaders): number | undefined {
  const v = first(headers['content-length']);
  if (v === undefined || !/^\d+$/.test(v.trim())) return undefined;
  return Number(v);
}

/** Origin and path, never the query (presigned storage URLs carry signatures there). */
function safeLocation(url: URL): string {
  return `${url.origin}${url.pathname}`;
}

/**
 * The one client for the upstream registry (Forgejo, or any registry with Bearer-token or Basic
 * auth), using the single service credential FORGEJO_API_USERNAME / FORGEJO_API_TOKEN.
 *
 * Auth is discovered by an anonymous `GET /v2/` (Forgejo pings are never sent Basic credentials:
 * Forgejo answers those with 401 authGroup.Verify). A Bearer challenge makes the client fetch
 * tokens from the realm with Basic credentials and cache them per (realm, service, scope);
 * a Basic challenge makes it send Basic credentials to the registry origin only.
 *
 * Every failure is classified once, logged once at error level with the cause and the fix,
 * and counted in gatehouse_upstream_failures_total{reason}.
 */
@Injectable()
export class UpstreamRegistryClient {
  private readonly log: AppLogger;
  private readonly failures;
  private readonly requests;
  private readonly tokenFetches;
  private readonly retry: RetryPolicy;
  private readonly policy: CredentialOriginPolicy | null;
  private readonly baseUrl: string | null;
  private readonly registryAgent: Agent;
  /** Redirect targets (blob storage): never shares connections, never receives credentials. */
  private readonly storageAgent: Agent;
  private readonly maxListBytes: number;

  private mode: 'unknown' | 'none' | 'basic' | 'bearer' = 'unknown';
  private bearer: BearerChallenge | null = null;
  private discovering: Promise<void> | null = null;
  private readonly tokens = new Map<string, CachedToken>();
  private readonly tokenFlights = new Map<string, Promise<CachedToken>>();
  private warnedRealmOrigin = false;

  constructor(
    private readonly config: UpstreamConfig,
    logger: AppLogger,
    metrics: MetricsService,
    private readonly clock: Clock = new Clock(),
    options: UpstreamClientOptions = {},
  ) {
    this.log = logger.child({ component: 'upstream' });
    this.failures = metrics.counter(
      'gatehouse_upstream_failures_total',
      'Upstream failures by classified reason (token_invalid, token_missing_scope, unreachable, ...)',
      ['reason'],
    );
    this.requests = metrics.counter(
      'gatehouse_upstream_requests_total',
      'Requests sent to the upstream registry',
      ['method', 'status'],
    );
    this.tokenFetches = metrics.counter(
      'gatehouse_upstream_token_fetches_total',
      'Tokens fetched from the upstream realm',
      ['outcome'],
    );
    this.retry = new RetryPolicy({
      retries: config.retries,
      baseDelayMs: options.retryBaseDelayMs,
      maxDelayMs: options.retryMaxDelayMs,
    });
    this.maxListBytes = options.maxListBytes ?? 4 * 1024 * 1024;
    this.baseUrl = config.baseUrl ? config.baseUrl.replace(/\/+$/, '') : null;
    this.policy = this.baseUrl ? new CredentialOriginPolicy(this.baseUrl) : null;
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

  get enabled(): boolean {
    return this.config.enabled && this.baseUrl !== null && this.config.token !== null;
  }

  /** Closes the keep-alive pools (module shutdown). */
  async close(): Promise<void> {
    await Promise.all([this.registryAgent.close(), this.storageAgent.close()]);
  }

  // ---------------------------------------------------------------- manifests

  async getManifest(
    name: string,
    reference: string,
    options: { method?: 'GET' | 'HEAD'; signal?: AbortSignal } = {},
  ): Promise<UpstreamManifest | UpstreamNotFound> {
    assertName(name);
    const byDigest = reference.includes(':');
    if (byDigest ? !isSupportedDigest(reference) : !isValidTag(reference)) {
      throw new OciError(byDigest ? 'DIGEST_INVALID' : 'MANIFEST_INVALID', { reason: 'malformed reference' });
    }
    const method = options.method ?? 'GET';
    const path = `/v2/${name}/manifests/${reference}`;
    const request = `${method} ${path}`;
    const ex = await this.send({
      method,
      path,
      repository: name,
      accept: MANIFEST_ACCEPT,
      signal: options.signal,
      followRedirects: true,
    });
    if (ex.status !== 200) return this.notFoundOrThrow(ex, { method, path, repository: name });

    const contentType = first(ex.headers['content-type'])?.split(';')[0].trim() ?? '';
    const headerDigest = first(ex.headers['docker-content-digest'])?.trim();

    if (method === 'HEAD') {
      await ex.body.dump();
      if (byDigest && headerDigest && headerDigest !== reference) {
        throw this.fail(this.mismatch(name, 'manifest', reference, headerDigest, request));
      }
      const digest = byDigest ? reference : headerDigest;
      if (!digest || !isSupportedDigest(digest)) {
        // A registry that does not announce the digest on HEAD: resolve it from the bytes instead.
        const full = await this.getManifest(name, reference, { method: 'GET', signal: options.signal });
        if (!full.found) return full;
        return { found: true, mediaType: full.mediaType, digest: full.digest, size: full.size };
      }
      const size = contentLength(ex.headers);
      if (size === undefined) {
        throw this.fail(
          new UpstreamProtocolError(
            `The upstream registry answered ${request} without Content-Length. Fix: check the proxy in front of FORGEJO_BASE_URL.`,
            { request, upstreamStatus: 200 },
          ),
        );
      }
      return { found: true, mediaType: contentType, digest, size };
    }

    const body = await this.readBounded(ex, MANIFEST_MAX_BYTES, request, `manifest ${name}:${reference}`);
    const announced = contentLength(ex.headers);
    if (announced !== undefined && announced !== body.length) {
      throw this.fail(
        new UpstreamIntegrityError(
          'truncated',
          `The upstream manifest ${name}:${reference} ended after ${body.length} of ${announced} bytes. Fix: check the network between the gateway and FORGEJO_BASE_URL and the upstream's logs.`,
          { request, upstreamStatus: 200 },
        ),
      );
    }
    const algorithm = byDigest
      ? digestAlgorithm(reference)
      : headerDigest && isSupportedDigest(headerDigest)
        ? digestAlgorithm(headerDigest)
        : 'sha256';
    const digest = computeDigest(body, algorithm);
    const expected = byDigest ? reference : headerDigest;
    if (expected && digest !== expected)
      throw this.fail(this.mismatch(name, 'manifest', expected, digest, request));

    let mediaType = contentType;
    if (!isManifestMediaType(mediaType)) {
      try {
        mediaType = parseManifest(body).mediaType;
      } catch {
        throw this.fail(
          new UpstreamProtocolError(
            `The upstream answered ${request} with something that is not a manifest (Content-Type "${contentType}"). Fix: check that FORGEJO_BASE_URL is the registry root.`,
            { request, upstreamStatus: 200 },
          ),
        );
      }
    }
    return { found: true, body, mediaType, digest, size: body.length };
  }

  // ---------------------------------------------------------------- blobs

  /**
   * Streams a blob. Without `range` the body is digest-verified as it flows (and must be
   * `expectedSize` long when given): it errors rather than ends on any shortfall. With `range`
   * the upstream may answer 206 (the range, length-checked) or 200 (it ignored Range, as
   * Forgejo 11 does: the whole blob, verified).
   */
  async getBlob(
    name: string,
    digest: string,
    options: {
      range?: string;
      expectedSize?: number;
      signal?: AbortSignal;
      /**
       * false: the caller hashes the body itself before using it (the blob cache's fill does), so
       * the full body is only checked for its length here instead of being hashed twice.
       */
      verifyDigest?: boolean;
    } = {},
  ): Promise<UpstreamBlob | UpstreamNotFound> {
    assertName(name);
    assertDigest(digest);
    const path = `/v2/${name}/blobs/${digest}`;
    const request = `GET ${path}`;
    const ex = await this.send({
      method: 'GET',
      path,
      repository: name,
      range: options.range,
      signal: options.signal,
      followRedirects: true,
    });
    const size = contentLength(ex.headers);
    if (ex.status === 200) {
      const expectedSize = options.expectedSize ?? size;
      if (options.expectedSize !== undefined && size !== undefined && size !== options.expectedSize) {
        await ex.body.dump().catch(() => undefined);
        throw this.fail(
          this.mismatch(
            name,
            'blob',
            digest,
            `a body of ${size} bytes instead of ${options.expectedSize}`,
            request,
          ),
        );
      }
      const mapError = (err: unknown, seen: number) =>
        this.blobStreamError(err, seen, expectedSize, { name, digest, request, signal: options.signal });
      const body =
        options.verifyDigest === false
          ? new LengthCheckedStream(ex.body, expectedSize, mapError)
          : new VerifiedBlobStream(ex.body, digest, expectedSize, mapError);
      return { found: true, status: 200, body, size };
    }
    if (ex.status === 206) {
      const contentRange = first(ex.headers['content-range']);
      const body = new LengthCheckedStream(ex.body, size, (err, seen) =>
        this.blobStreamError(err, seen, size, { name, digest, request, signal: options.signal }),
      );
      return { found: true, status: 206, body, size, ...(contentRange ? { contentRange } : {}) };
    }
    if (ex.status === 416) {
      await ex.body.dump().catch(() => undefined);
      const range = first(ex.headers['content-range']);
      throw new OciError('RANGE_INVALID', {
        headers: range ? { 'Content-Range': range } : {},
        reason: 'upstream_range_invalid',
      });
    }
    return this.notFoundOrThrow(ex, { method: 'GET', path, repository: name });
  }

  async headBlob(
    name: string,
    digest: string,
    options: { signal?: AbortSignal } = {},
  ): Promise<UpstreamBlobHead | UpstreamNotFound> {
    assertName(name);
    assertDigest(digest);
    const path = `/v2/${name}/blobs/${digest}`;
    const ex = await this.send({ method: 'HEAD', path, repository: name, signal: options.signal });
    if (ex.status !== 200) return this.notFoundOrThrow(ex, { method: 'HEAD', path, repository: name });
    await ex.body.dump();
    const headerDigest = first(ex.headers['docker-content-digest'])?.trim();
    if (headerDigest && headerDigest !== digest)
      throw this.fail(this.mismatch(name, 'blob', digest, headerDigest, `HEAD ${path}`));
    return { found: true, size: contentLength(ex.headers), digest };
  }

  // ---------------------------------------------------------------- tags

  async listTags(
    name: string,
    options: { n?: number; last?: string; signal?: AbortSignal } = {},
  ): Promise<UpstreamTagPage | UpstreamNotFound> {
    assertName(name);
    const query = new URLSearchParams();
    if (options.n !== undefined) query.set('n', String(options.n));
    if (options.last !== undefined) query.set('last', options.last);
    const qs = query.toString();
    const page = await this.tagPage(name, `/v2/${name}/tags/list${qs ? `?${qs}` : ''}`, options.signal);
    if (!page.found) return page;
    const { nextPath: _ignored, ...rest } = page;
    return rest;
  }

  /**
   * Every tag, following `Link: rel="next"` exactly as given. Forgejo announces a next page on
   * every non-empty page, so the walk ends on the empty page that follows the last one.
   */
  async listAllTags(
    name: string,
    options: { pageSize?: number; signal?: AbortSignal } = {},
  ): Promise<{ found: true; name: string; tags: string[] } | UpstreamNotFound> {
    assertName(name);
    const n = options.pageSize ?? 1000;
    let path: string | undefined = `/v2/${name}/tags/list?n=${n}`;
    const seen = new Set<string>();
    const tags: string[] = [];
    let repoName = name;
    for (let pages = 0; path; pages++) {
      if (pages >= 10_000 || seen.has(path)) {
        throw this.fail(
          new UpstreamProtocolError(
            `The upstream tag list for ${name} keeps announcing pages (${path}). Fix: check the upstream registry.`,
            {
              request: `GET /v2/${name}/tags/list`,
            },
          ),
        );
      }
      seen.add(path);
      const page = await this.tagPage(name, path, options.signal);
      if (!page.found) {
        if (pages === 0) return page;
        break;
      }
      repoName = page.name;
      if (page.tags.length === 0) break;
      for (const t of page.tags) if (!tags.includes(t)) tags.push(t);
      path = page.nextPath;
    }
    return { found: true, name: repoName, tags };
  }

  private async tagPage(
    name: string,
    path: string,
    signal: AbortSignal | undefined,
  ): Promise<(UpstreamTagPage & { nextPath?: string }) | UpstreamNotFound> {
    const ex = await this.send({ method: 'GET', path, repository: name, signal, accept: 'application/json' });
    const request = `GET ${path.split('?')[0]}`;
    if (ex.status !== 200) return this.notFoundOrThrow(ex, { method: 'GET', path, repository: name });
    const json = await this.readJson(ex, this.maxListBytes, request);
    const tags = (json as { tags?: unknown }).tags;
    if (
      tags !== null &&
      tags !== undefined &&
      (!Array.isArray(tags) || tags.some((t) => typeof t !== 'string'))
    ) {
      throw this.fail(
        new UpstreamProtocolError(
          `The upstream answered ${request} with a malformed tag list. Fix: check the upstream registry.`,
          { request, upstreamStatus: 200 },
        ),
      );
    }
    const out: UpstreamTagPage & { nextPath?: string } = {
      found: true,
      name: typeof (json as { name?: unknown }).name === 'string' ? (json as { name: string }).name : name,
      tags: (tags as string[] | null | undefined) ?? [],
    };
    const next = nextLinkUrl(ex.headers.link, ex.url.toString());
    if (next && this.policy && next.origin === this.policy.baseOrigin) {
      const last = next.searchParams.get('last') ?? undefined;
      const nParam = next.searchParams.get('n');
      out.next = {
        ...(last !== undefined ? { last } : {}),
        ...(nParam && /^\d+$/.test(nParam) ? { n: Number(nParam) } : {}),
      };
      out.nextPath = `${next.pathname}${next.search}`;
    } else if (next) {
      this.log.warn(
        { link: safeLocation(next) },
        'The upstream announced a tag page on another origin; it was not followed.',
      );
    }
    return out;
  }

  // ---------------------------------------------------------------- readiness

  /**
   * Readiness: is the upstream reachable, does it accept the service token, and can the token
   * read images? Steps:
   *  1. anonymous `GET /v2/` rediscovers the auth scheme (a changed challenge is picked up);
   *  2. Bearer: a fresh token from the realm (bypassing the cache, so a revoked token shows at
   *     once); Basic: nothing to fetch;
   *  3. an authenticated `GET /v2/` (Forgejo's ping accepts its JWT, distribution its Basic);
   *  4. Forgejo checks `read:package` and the owner only on image routes (not on the token
   *     endpoint, the ping or _catalog), so a token without the scope passes 1-3. Step 4
   *     reads one tag of a repository: `probeRepository` when given, else the first
   *     repository `GET /v2/_catalog?n=1` lists. A 401 with `Basic realm` there is the
   *     missing scope, a 403 `reqToken` a public-only token. A registry whose catalog is empty
   *     or refused skips step 4 (nothing to probe, and not a reason to be unready).
   * Failures are logged and counted like any other upstream failure.
   */
  async checkAccess(
    options: { probeRepository?: string; signal?: AbortSignal } = {},
  ): Promise<AccessCheckResult> {
    try {
      this.assertConfigured();
      await this.discover(true);
      if (this.mode === 'bearer') {
        await this.token(this.scopeFor({ method: 'GET', path: '/v2/' }), {
          fresh: true,
          signal: options.signal,
        });
      }
      const ping = await this.send({ method: 'GET', path: '/v2/', signal: options.signal });
      if (ping.status !== 200) {
        const result = await this.notFoundOrThrow(ping, { method: 'GET', path: '/v2/' });
        throw this.fail(
          new UpstreamProtocolError(
            `The upstream registry answered ${ping.status} to GET /v2/${result.code ? ` (${result.code})` : ''}: FORGEJO_BASE_URL does not point at a registry. Fix: set FORGEJO_BASE_URL to the registry root (for Forgejo, its ROOT_URL without /v2).`,
            { request: 'GET /v2/', upstreamStatus: ping.status },
          ),
        );
      }
      await ping.body.dump();
      const probe = options.probeRepository ?? (await this.firstCatalogRepository(options.signal));
      if (probe) await this.listTags(probe, { n: 1, signal: options.signal });
      return {
        ok: true,
        authScheme: this.mode === 'unknown' ? 'none' : this.mode,
        ...(probe ? { probedRepository: probe } : {}),
      };
    } catch (err) {
      if (err instanceof UpstreamError)
        return { ok: false, reason: err.reason, message: err.message, error: err };
      throw err;
    }
  }

  private async firstCatalogRepository(signal: AbortSignal | undefined): Promise<string | undefined> {
    try {
      const ex = await this.send({
        method: 'GET',
        path: '/v2/_catalog?n=1',
        scope: 'registry:catalog:*',
        accept: 'application/json',
        signal,
        quiet: true,
      });
      if (ex.status !== 200) {
        await ex.body.dump().catch(() => undefined);
        return undefined;
      }
      const json = (await this.readJson(ex, this.maxListBytes, 'GET /v2/_catalog')) as {
        repositories?: unknown;
      };
      const repos = Array.isArray(json.repositories) ? json.repositories : [];
      const name = repos.find((r): r is string => typeof r === 'string' && isValidRepositoryName(r));
      return name;
    } catch (err) {
      // A registry may refuse or lack the catalog; that only means there is nothing to probe.
      if (!(err instanceof UpstreamError)) throw err;
      if (err instanceof UpstreamUnavailableError) throw this.fail(err);
      return undefined;
    }
  }

  // ---------------------------------------------------------------- core exchange

  private assertConfigured(): void {
    if (!this.enabled) {
      throw this.fail(
        new UpstreamUnavailableError(
          'not_configured',
          `The upstream is not configured: ${this.config.missing.join(' and ') || 'FORGEJO_BASE_URL / FORGEJO_API_TOKEN'} not set. ` +
            'Fix: set FORGEJO_BASE_URL to the Forgejo root URL and FORGEJO_API_TOKEN to a token with scope read:package.',
        ),
      );
    }
  }

  /** Learns the auth scheme from an anonymous ping, once (concurrent callers share it). */
  private async discover(force = false): Promise<void> {
    if (this.mode !== 'unknown' && !force) return;
    if (!this.discovering) {
      this.discovering = (async () => {
        // No caller's signal: the discovery is shared, and one caller giving up must not fail the others.
        const ex = await this.send({ method: 'GET', path: '/v2/', anonymous: true });
        await ex.body.dump().catch(() => undefined);
        if (ex.status === 200) {
          this.mode = 'none';
          return;
        }
        if (ex.status === 401) {
          const request = 'GET /v2/';
          const challenges = parseWwwAuthenticate(ex.headers['www-authenticate']);
          const bearer = findBearerChallenge(challenges);
          if (bearer) {
            this.learnBearer(bearer, request);
            this.mode = 'bearer';
            return;
          }
          if (findBasicChallenge(challenges)) {
            this.mode = 'basic';
            return;
          }
          throw this.fail(
            new UpstreamProtocolError(
              `The upstream registry answered ${request} with 401 but no Bearer or Basic challenge. Fix: check that FORGEJO_BASE_URL is the registry root and that no proxy strips WWW-Authenticate.`,
              { request, upstreamStatus: 401 },
            ),
          );
        }
        if (ex.status >= 500 || ex.status === 429) {
          throw this.fail(
            classifyAnswerAsError({ ...this.answerBase(ex, 'GET /v2/', undefined), bodySnippet: '' }),
          );
        }
        throw this.fail(
          new UpstreamProtocolError(
            `The upstream answered ${ex.status} to GET /v2/: FORGEJO_BASE_URL does not point at a registry. Fix: set FORGEJO_BASE_URL to the registry root (for Forgejo, its ROOT_URL without /v2).`,
            { request: 'GET /v2/', upstreamStatus: ex.status },
          ),
        );
      })().finally(() => {
        this.discovering = null;
      });
    }
    await this.discovering;
  }

  private learnBearer(challenge: BearerChallenge, request: string): void {
    const admitted = this.policy!.admitRealm(challenge.realm);
    if (!admitted.ok) {
      throw this.fail(
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

  private basicCredentials(): string {
    return `Basic ${Buffer.from(`${this.config.username}:${this.config.token}`).toString('base64')}`;
  }

  private async authorization(
    spec: RequestSpec,
    forceFresh: boolean,
    scopeOverride?: string,
  ): Promise<Authorization> {
    if (spec.anonymous || this.mode === 'none' || this.mode === 'unknown')
      return { kind: 'none', fromCache: false };
    if (this.mode === 'basic') return { kind: 'basic', header: this.basicCredentials(), fromCache: false };
    const scope = scopeOverride ?? this.scopeFor(spec);
    const { token, fromCache, key } = await this.token(scope, { fresh: forceFresh, signal: spec.signal });
    return { kind: 'bearer', header: `Bearer ${token}`, fromCache, tokenKey: key };
  }

  private tokenKey(scope: string | undefined): string {
    return JSON.stringify([this.bearer?.realm, this.bearer?.service ?? '', scope ?? '']);
  }

  private async token(
    scope: string | undefined,
    options: { fresh: boolean; signal?: AbortSignal },
  ): Promise<{ token: string; fromCache: boolean; key: string }> {
    const key = this.tokenKey(scope);
    const cached = this.tokens.get(key);
    if (!options.fresh && cached && this.clock.now() < cached.usableUntil) {
      return { token: cached.token, fromCache: true, key };
    }
    let flight = this.tokenFlights.get(key);
    if (!flight || options.fresh) {
      flight = this.fetchToken(scope, options.signal).finally(() => {
        if (this.tokenFlights.get(key) === flight) this.tokenFlights.delete(key);
      });
      this.tokenFlights.set(key, flight);
    }
    const entry = await flight;
    this.tokens.set(key, entry);
    return { token: entry.token, fromCache: false, key };
  }

  private async fetchToken(scope: string | undefined, signal: AbortSignal | undefined): Promise<CachedToken> {
    const challenge = this.bearer!;
    const url = new URL(challenge.realm);
    if (challenge.service) url.searchParams.set('service', challenge.service);
    if (scope) url.searchParams.append('scope', scope);
    const request = `GET ${safeLocation(url)}`;
    if (!this.policy!.mayReceiveCredentials(url)) {
      throw this.fail(
        new UpstreamProtocolError(
          `Refusing to send the service credentials to ${safeLocation(url)}. Fix: check the realm the upstream announces.`,
          { request },
        ),
      );
    }
    const headers = {
      authorization: this.basicCredentials(),
      accept: 'application/json',
      'user-agent': USER_AGENT,
    };
    const ex = await this.withRetries(
      'GET',
      { request, target: 'realm', where: safeLocation(url), signal },
      async () => {
        try {
          const res = await undiciRequest(url, {
            method: 'GET',
            headers,
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
    );
    const receivedAt = this.clock.now();
    if (ex.status !== 200) {
      this.tokenFetches.inc({ outcome: String(ex.status) });
      const snippet = await this.snippet(ex);
      throw this.fail(
        classifyAnswerAsError({ ...this.answerBase(ex, request, undefined), bodySnippet: snippet }),
      );
    }
    const json = await this.readJson(ex, TOKEN_RESPONSE_MAX_BYTES, request);
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
      throw this.fail(
        new UpstreamProtocolError(
          `The upstream token endpoint answered ${request} without a usable token (${why}). Fix: check the realm the upstream announces.`,
          { request, upstreamStatus: 200 },
        ),
      );
    }
  }

  /**
   * One logical request: authenticate, retry transient failures, refresh a cached token once on
   * a 401, follow redirects (dropping credentials off the registry origin). Returns the final
   * answer, whatever its status; callers decide what is success.
   */
  private async send(spec: RequestSpec): Promise<Exchange> {
    this.assertConfigured();
    if (!spec.anonymous) await this.discover();
    const request = `${spec.method} ${spec.path.split('?')[0]}`;
    let refreshed = false;
    let scopeOverride: string | undefined;
    for (;;) {
      const auth = await this.authorization(spec, refreshed, scopeOverride);
      const ex = await this.withRetries(
        spec.method,
        { request, target: 'registry', where: this.baseUrl!, signal: spec.signal, quiet: spec.quiet },
        () => this.dispatch(spec, auth),
      );
      if (ex.status !== 401 || ex.target !== 'registry' || refreshed || spec.anonymous) return ex;

      const challenges = parseWwwAuthenticate(ex.headers['www-authenticate']);
      const bearer = findBearerChallenge(challenges);
      const basic = findBasicChallenge(challenges);
      if (auth.kind === 'none' && (bearer || basic)) {
        // The registry wants credentials where the ping did not (or the scheme changed).
        if (bearer) {
          this.learnBearer(bearer, request);
          this.mode = 'bearer';
        } else {
          this.mode = 'basic';
        }
      } else if (auth.kind === 'bearer' && !basic && bearer?.error !== 'insufficient_scope') {
        // An expired or revoked cached token, or a registry that wants another scope: one fresh token.
        const wantsOtherScope = bearer?.scope !== undefined && bearer.scope !== this.scopeFor(spec);
        if (!auth.fromCache && !wantsOtherScope) return ex;
        if (bearer && wantsOtherScope) scopeOverride = bearer.scope;
        if (auth.tokenKey) this.tokens.delete(auth.tokenKey);
      } else {
        return ex;
      }
      refreshed = true;
      await ex.body.dump().catch(() => undefined);
    }
  }

  private async dispatch(spec: RequestSpec, auth: Authorization): Promise<Exchange> {
    let url = new URL(spec.path, `${this.baseUrl}/`);
    let method: 'GET' | 'HEAD' = spec.method;
    // Forgejo 11 puts Docker-Content-Digest on its 307 and storage never does: keep it for verification.
    let redirectDigest: string | undefined;
    for (let hop = 0; ; hop++) {
      const target: UpstreamTarget = url.origin === this.policy!.baseOrigin ? 'registry' : 'storage';
      const headers: Record<string, string> = { 'user-agent': USER_AGENT };
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
          throw this.fail(
            new UpstreamProtocolError(
              `The upstream redirected ${spec.method} ${spec.path.split('?')[0]} too often or to a non-http location (${next.protocol}). Fix: check the upstream's storage redirect settings.`,
              { request: `${spec.method} ${spec.path.split('?')[0]}`, upstreamStatus: res.statusCode },
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
        throw ctx.quiet ? classified : this.fail(classified);
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

  // ---------------------------------------------------------------- answers and failures

  private answerBase(ex: Exchange, request: string, repository: string | undefined) {
    return {
      status: ex.status,
      headers: ex.headers,
      request,
      target: ex.target,
      sentAuth: ex.sentAuth,
      repository,
    };
  }

  /** A non-success answer: the typed not-found, or a classified, logged, counted error. */
  private async notFoundOrThrow(
    ex: Exchange,
    spec: { method: string; path: string; repository?: string; quiet?: boolean },
  ): Promise<UpstreamNotFound> {
    const snippet = await this.snippet(ex);
    const request = `${spec.method} ${ex.target === 'storage' ? `(redirected) ${safeLocation(ex.url)}` : spec.path.split('?')[0]}`;
    const result = classifyUpstreamAnswer({
      ...this.answerBase(ex, request, spec.repository),
      bodySnippet: snippet,
    });
    if (result instanceof UpstreamError) throw spec.quiet ? result : this.fail(result);
    if (ex.target === 'storage') {
      this.log.warn(
        { request },
        'The blob storage the upstream redirected to does not have the object (404).',
      );
    }
    return result.code ? { found: false, code: result.code } : { found: false };
  }

  private async snippet(ex: Exchange): Promise<string> {
    const chunks: Buffer[] = [];
    let total = 0;
    try {
      for await (const chunk of ex.body) {
        const b = chunk as Buffer;
        chunks.push(b);
        total += b.length;
        if (total >= ERROR_SNIPPET_BYTES) break;
      }
    } catch {
      // The status is what matters; a broken error body is not worth a second failure.
    } finally {
      if (!ex.body.destroyed) ex.body.destroy();
    }
    return Buffer.concat(chunks).subarray(0, ERROR_SNIPPET_BYTES).toString('utf8');
  }

  private async readBounded(ex: Exchange, max: number, request: string, what: string): Promise<Buffer> {
    const announced = contentLength(ex.headers);
    if (announced !== undefined && announced > max) {
      ex.body.destroy();
      throw this.fail(
        new UpstreamProtocolError(
          `The upstream ${what} is ${announced} bytes, over the ${max}-byte limit. Fix: none on the gateway side; such a manifest cannot be served.`,
          { request, upstreamStatus: ex.status },
        ),
      );
    }
    const chunks: Buffer[] = [];
    let total = 0;
    try {
      for await (const chunk of ex.body) {
        const b = chunk as Buffer;
        total += b.length;
        if (total > max) {
          ex.body.destroy();
          throw this.fail(
            new UpstreamProtocolError(
              `The upstream ${what} exceeds the ${max}-byte limit. Fix: none on the gateway side; such a manifest cannot be served.`,
              { request, upstreamStatus: ex.status },
            ),
          );
        }
        chunks.push(b);
      }
    } catch (err) {
      if (err instanceof UpstreamError) throw err;
      throw this.fail(this.bodyFailure(err, `${what}`, total, announced, request));
    }
    return Buffer.concat(chunks);
  }

  private async readJson(ex: Exchange, max: number, request: string): Promise<unknown> {
    const body = await this.readBounded(ex, max, request, `answer to ${request}`);
    try {
      return JSON.parse(body.toString('utf8'));
    } catch {
      throw this.fail(
        new UpstreamProtocolError(
          `The upstream answered ${request} with invalid JSON. Fix: check that FORGEJO_BASE_URL is the registry root and no proxy rewrites answers.`,
          { request, upstreamStatus: ex.status },
        ),
      );
    }
  }

  private bodyFailure(
    err: unknown,
    what: string,
    seen: number,
    expected: number | undefined,
    request: string,
  ): UpstreamError {
    if (errorCode(err) === 'UND_ERR_BODY_TIMEOUT') {
      return new UpstreamUnavailableError(
        'timeout',
        `The upstream body of ${what} stalled: no data for ${this.config.bodyTimeoutMs} ms after ${seen} bytes. Fix: check the upstream's load and the network, or raise UPSTREAM_BODY_TIMEOUT_MS.`,
        { request, cause: err },
      );
    }
    const code = errorCode(err) ?? (err instanceof Error ? err.message : String(err));
    return new UpstreamIntegrityError(
      'truncated',
      `The upstream body of ${what} ended after ${seen}${expected !== undefined ? ` of ${expected}` : ''} bytes (${code}): the connection to the upstream was cut. Nothing was cached. Fix: check the network between the gateway and FORGEJO_BASE_URL and the upstream's logs.`,
      { request, cause: err },
    );
  }

  private mismatch(
    name: string,
    kind: 'manifest' | 'blob',
    expected: string,
    actual: string,
    request: string,
  ): UpstreamError {
    return new UpstreamIntegrityError(
      'digest_mismatch',
      `The upstream served ${name} ${kind} ${expected} as ${actual}: the bytes were refused and not cached. Fix: check the upstream's storage for corruption, or a proxy that rewrites answers.`,
      { request, upstreamStatus: 200 },
    );
  }

  private blobStreamError(
    err: unknown,
    seen: number,
    expectedSize: number | undefined,
    ctx: { name: string; digest: string; request: string; signal?: AbortSignal },
  ): Error {
    if (err instanceof UpstreamError) return err;
    if (ctx.signal?.aborted) return err instanceof Error ? err : new Error(String(err));
    if (err instanceof DigestMismatchError) {
      const short =
        err.expectedSize !== undefined && err.actualSize !== undefined && err.actualSize < err.expectedSize;
      if (short)
        return this.fail(
          this.bodyFailure(
            new Error('the body ended early'),
            `${ctx.name} blob ${ctx.digest}`,
            seen,
            expectedSize,
            ctx.request,
          ),
        );
      return this.fail(
        this.mismatch(
          ctx.name,
          'blob',
          ctx.digest,
          err.actualSize !== undefined && err.expectedSize !== err.actualSize
            ? `${err.actualSize}+ bytes instead of ${err.expectedSize}`
            : err.actual,
          ctx.request,
        ),
      );
    }
    return this.fail(
      this.bodyFailure(err, `${ctx.name} blob ${ctx.digest}`, seen, expectedSize, ctx.request),
    );
  }

  /** Logs the operator line once at error level, counts the reason, and returns the error to throw. */
  private fail<E extends UpstreamError>(err: E): E {
    this.failures.inc({ reason: err.reason });
    const fields: Record<string, unknown> = { reason: err.reason };
    if (err.upstreamStatus !== undefined) fields.upstreamStatus = err.upstreamStatus;
    if (err.request) fields.upstreamRequest = this.redact(err.request);
    if (err.cause !== undefined) fields.cause = this.redact(describeCause(err.cause));
    this.log.error(fields, this.redact(err.message));
    return err;
  }

  /** scrubSecrets knows token shapes; this also removes the configured secret whatever its shape. */
  private redact(text: string): string {
    let out = scrubSecrets(text);
    const token = this.config.token;
    if (token && token.length >= 4) {
      out = out.split(token).join('[REDACTED]');
      out = out.split(Buffer.from(`${this.config.username}:${token}`).toString('base64')).join('[REDACTED]');
    }
    return out;
  }
}

// The classifier returns "not found" for 404s; where only an error makes sense (token endpoint, ping) force one.
function classifyAnswerAsError(a: Parameters<typeof classifyUpstreamAnswer>[0]): UpstreamError {
  const r = classifyUpstreamAnswer(a);
  if (r instanceof UpstreamError) return r;
  return new UpstreamProtocolError(
    `The upstream answered ${a.status} to ${a.request}. Fix: check that FORGEJO_BASE_URL is the registry root and that the realm it announces exists.`,
    { request: a.request, upstreamStatus: a.status },
  );
}

function describeCause(cause: unknown): string {
  if (cause instanceof Error) {
    const code = errorCode(cause);
    return `${cause.name}${code ? ` ${code}` : ''}: ${cause.message}`;
  }
  return String(cause);
}

function assertName(name: string): void {
  if (!isValidRepositoryName(name))
    throw new OciError('NAME_INVALID', { reason: 'malformed repository name' });
}

function assertDigest(digest: string): void {
  if (!isSupportedDigest(digest)) throw new OciError('DIGEST_INVALID', { reason: 'malformed digest' });
}
