import { isValidRepositoryName } from '@gatehouse/oci';
import { UpstreamAuthSession } from './upstream-auth.session';
import { UpstreamBodyReader } from './upstream-body.reader';
import { UpstreamFailureReporter } from './upstream-failure.reporter';
import { UpstreamTagLister } from './upstream-tag.lister';
import { UpstreamError, UpstreamProtocolError, UpstreamUnavailableError } from './upstream.error';
import { AccessCheckResult } from './upstream.types';

/** The upstream's readiness: reachable, accepting the service token, and able to read images. */
export class UpstreamReadinessProbe {
  constructor(
    private readonly session: UpstreamAuthSession,
    private readonly body: UpstreamBodyReader,
    private readonly failures: UpstreamFailureReporter,
    private readonly tags: UpstreamTagLister,
    private readonly maxListBytes: number,
  ) {}

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
      this.session.assertConfigured();
      await this.session.discover(true);
      if (this.session.mode === 'bearer') await this.session.freshPingToken(options.signal);
      const ping = await this.session.send({ method: 'GET', path: '/v2/', signal: options.signal });
      if (ping.status !== 200) {
        const result = await this.body.notFoundOrThrow(ping, { method: 'GET', path: '/v2/' });
        throw this.failures.fail(
          new UpstreamProtocolError(
            `The upstream registry answered ${ping.status} to GET /v2/${result.code ? ` (${result.code})` : ''}: FORGEJO_BASE_URL does not point at a registry. Fix: set FORGEJO_BASE_URL to the registry root (for Forgejo, its ROOT_URL without /v2).`,
            { request: 'GET /v2/', upstreamStatus: ping.status },
          ),
        );
      }
      await ping.body.dump();
      const probe = options.probeRepository ?? (await this.firstCatalogRepository(options.signal));
      if (probe) await this.tags.listTags(probe, { n: 1, signal: options.signal });
      const mode = this.session.mode;
      return {
        ok: true,
        authScheme: mode === 'unknown' ? 'none' : mode,
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
      const ex = await this.session.send({
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
      const json = (await this.body.readJson(ex, this.maxListBytes, 'GET /v2/_catalog')) as {
        repositories?: unknown;
      };
      const repos = Array.isArray(json.repositories) ? json.repositories : [];
      const name = repos.find((r): r is string => typeof r === 'string' && isValidRepositoryName(r));
      return name;
    } catch (err) {
      // A registry may refuse or lack the catalog; that only means there is nothing to probe.
      if (!(err instanceof UpstreamError)) throw err;
      if (err instanceof UpstreamUnavailableError) throw this.failures.fail(err);
      return undefined;
    }
  }
}
