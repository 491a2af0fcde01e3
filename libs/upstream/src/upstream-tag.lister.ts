import { AppLogger } from '@gatehouse/observability';
import { CredentialOriginPolicy } from './credential-origin.policy';
import { nextLinkUrl } from './link-header.parser';
import { UpstreamAuthSession } from './upstream-auth.session';
import { UpstreamBodyReader } from './upstream-body.reader';
import { assertName, safeLocation } from './upstream-exchange';
import { UpstreamFailureReporter } from './upstream-failure.reporter';
import { UpstreamProtocolError } from './upstream.error';
import { UpstreamNotFound, UpstreamTagPage } from './upstream.types';

/** Tag lists: one page as asked, or every page following `Link: rel="next"`. */
export class UpstreamTagLister {
  constructor(
    private readonly session: UpstreamAuthSession,
    private readonly body: UpstreamBodyReader,
    private readonly failures: UpstreamFailureReporter,
    private readonly policy: CredentialOriginPolicy | null,
    private readonly log: AppLogger,
    private readonly maxListBytes: number,
  ) {}

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
        throw this.failures.fail(
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

  /**
   * Every repository `/v2/_catalog` lists to the service credentials, following same-origin
   * `Link: rel="next"` (at most 100 pages); null when the upstream refuses or lacks a catalog.
   */
  async listCatalog(options: { signal?: AbortSignal } = {}): Promise<string[] | null> {
    const repositories: string[] = [];
    let path: string | null = '/v2/_catalog?n=1000';
    for (let pages = 0; path && pages < 100; pages++) {
      const ex = await this.session.send({
        method: 'GET',
        path,
        scope: 'registry:catalog:*',
        accept: 'application/json',
        signal: options.signal,
      });
      if (ex.status !== 200) {
        await this.body.notFoundOrThrow(ex, { method: 'GET', path });
        return null;
      }
      const json = (await this.body.readJson(ex, this.maxListBytes, 'GET /v2/_catalog')) as {
        repositories?: unknown;
      };
      if (!Array.isArray(json.repositories)) return null;
      for (const r of json.repositories) if (typeof r === 'string') repositories.push(r);
      const next = nextLinkUrl(ex.headers.link, ex.url.toString());
      path =
        next && this.policy && next.origin === this.policy.baseOrigin
          ? `${next.pathname}${next.search}`
          : null;
    }
    return repositories;
  }

  private async tagPage(
    name: string,
    path: string,
    signal: AbortSignal | undefined,
  ): Promise<(UpstreamTagPage & { nextPath?: string }) | UpstreamNotFound> {
    const ex = await this.session.send({
      method: 'GET',
      path,
      repository: name,
      signal,
      accept: 'application/json',
    });
    const request = `GET ${path.split('?')[0]}`;
    if (ex.status !== 200) return this.body.notFoundOrThrow(ex, { method: 'GET', path, repository: name });
    const json = await this.body.readJson(ex, this.maxListBytes, request);
    const tags = (json as { tags?: unknown }).tags;
    if (
      tags !== null &&
      tags !== undefined &&
      (!Array.isArray(tags) || tags.some((t) => typeof t !== 'string'))
    ) {
      throw this.failures.fail(
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
}
