import type { UpstreamConfig } from '@gatehouse/config';
import { UpstreamBodyReader } from './upstream-body.reader';
import {
  Authorization,
  basicCredentials,
  contentLength,
  Exchange,
  first,
  jsonGet,
  RequestSpec,
} from './upstream-exchange';
import { answerBase, UpstreamFailureReporter } from './upstream-failure.reporter';
import { classifyUpstreamAnswer } from './upstream-failure.classifier';
import { UpstreamTransport } from './upstream-transport';
import { UpstreamAuthError, UpstreamError, UpstreamProtocolError } from './upstream.error';
import { UpstreamNotFound } from './upstream.types';

/** A release asset as Forgejo's releases API lists it (metadata only). */
export interface UpstreamReleaseAsset {
  name: string;
  size: number;
  uuid: string | null;
}

export interface UpstreamRelease {
  tag: string;
  name: string;
  prerelease: boolean;
  /** ISO time; releases are listed newest first. */
  publishedAt: string;
  assets: UpstreamReleaseAsset[];
}

/** A generic package file with the digests Forgejo stores for it. */
export interface UpstreamPackageFile {
  name: string;
  size: number;
  sha256: string | null;
}

/** A published version of a generic package, as Forgejo's package list has it. */
export interface UpstreamPackageVersion {
  /** As uploaded (Forgejo finds it by its lowercase form). */
  version: string;
  /** ISO time; versions are listed newest first. */
  createdAt: string;
}

/** The bytes of an asset or package file: 200 (whole) or 206 (the asked range). */
export interface UpstreamDownload {
  found: true;
  status: 200 | 206;
  /** The whole file's size when the answer says it (Content-Length of a 200, the total of a Content-Range). */
  size: number | undefined;
  /** Bytes in this body. */
  length: number | undefined;
  contentRange: string | undefined;
  etag: string | undefined;
  body: Exchange['body'];
  /** Whether the bytes came from a storage origin the upstream redirected to (no credentials sent there). */
  redirected: boolean;
}

/** A 200 or 206 answer as an UpstreamDownload: sizes from Content-Length and Content-Range. */
export function downloadOf(ex: Exchange & { status: 200 | 206 }, redirected: boolean): UpstreamDownload {
  const range = first(ex.headers['content-range']);
  const total = range ? /\/(\d+)$/.exec(range)?.[1] : undefined;
  const length = contentLength(ex.headers);
  return {
    found: true,
    status: ex.status,
    size: ex.status === 200 ? length : total !== undefined ? Number(total) : undefined,
    length,
    contentRange: range,
    etag: first(ex.headers.etag),
    body: ex.body,
    redirected,
  };
}

/**
 * The download surface of the upstream, one implementation per UPSTREAM_KIND: Forgejo's release
 * and package APIs (UpstreamDownloadFetcher) or another Gatehouse's /downloads/ routes
 * (GatehouseDownloadFetcher). The catalog and the downloads service see only this port.
 */
export interface DownloadFetcher {
  listReleases(
    owner: string,
    repo: string,
    options?: { signal?: AbortSignal; quiet?: boolean; limit?: number },
  ): Promise<{ found: true; releases: UpstreamRelease[] } | UpstreamNotFound>;
  listPackageVersions(
    owner: string,
    name: string,
    options?: { signal?: AbortSignal; quiet?: boolean },
  ): Promise<{ found: true; versions: UpstreamPackageVersion[] } | UpstreamNotFound>;
  listPackageFiles(
    owner: string,
    name: string,
    version: string,
    options?: { signal?: AbortSignal },
  ): Promise<{ found: true; files: UpstreamPackageFile[] } | UpstreamNotFound>;
  openReleaseAsset(
    owner: string,
    repo: string,
    tag: string,
    filename: string,
    options?: { range?: string; signal?: AbortSignal },
  ): Promise<UpstreamDownload | UpstreamNotFound>;
  openPackageFile(
    owner: string,
    name: string,
    version: string,
    filename: string,
    options?: { range?: string; signal?: AbortSignal },
  ): Promise<UpstreamDownload | UpstreamNotFound>;
}

const PAGE = 50;
const MAX_PAGES = 40;
const MAX_JSON_BYTES = 8 * 1024 * 1024;
const seg = (s: string) => encodeURIComponent(s);

/**
 * Forgejo's release and generic-package surfaces, on the upstream client's transport (the same
 * pools, retries and credential-origin policy as blobs): Basic with the service token on the
 * Forgejo origin only, redirects to storage (302/303/307) followed without it. The releases API
 * needs `read:repository`, package files `read:package`; a missing scope is an operator error
 * (`token_missing_scope`) naming the fix.
 */
export class UpstreamDownloadFetcher implements DownloadFetcher {
  constructor(
    private readonly config: UpstreamConfig,
    private readonly transport: UpstreamTransport,
    private readonly body: UpstreamBodyReader,
    private readonly failures: UpstreamFailureReporter,
  ) {}

  private auth(): Authorization {
    return { header: basicCredentials(this.config), kind: 'basic', fromCache: false };
  }

  private send(spec: RequestSpec): Promise<Exchange> {
    return this.transport.send(spec, this.auth());
  }

  /** Every published release of `owner/repo`, newest first; not-found when the repository is not visible. */
  async listReleases(
    owner: string,
    repo: string,
    options: { signal?: AbortSignal; quiet?: boolean; limit?: number } = {},
  ): Promise<{ found: true; releases: UpstreamRelease[] } | UpstreamNotFound> {
    const releases: UpstreamRelease[] = [];
    const limit = options.limit ?? PAGE;
    for (let page = 1; page <= MAX_PAGES; page++) {
      const path = `/api/v1/repos/${seg(owner)}/${seg(repo)}/releases?limit=${limit}&page=${page}`;
      const json = await this.getJson(path, options);
      if (json === null) return { found: false };
      if (!Array.isArray(json)) throw this.protocol(path, 'a release list that is not a JSON array');
      for (const r of json as Array<Record<string, unknown>>) {
        if (r.draft === true || typeof r.tag_name !== 'string') continue;
        releases.push({
          tag: r.tag_name,
          name: typeof r.name === 'string' ? r.name : r.tag_name,
          prerelease: r.prerelease === true,
          publishedAt: String(r.published_at ?? r.created_at ?? ''),
          assets: (Array.isArray(r.assets) ? (r.assets as Array<Record<string, unknown>>) : [])
            .filter((a) => typeof a.name === 'string' && a.type !== 'external')
            .map((a) => ({
              name: a.name as string,
              size: typeof a.size === 'number' ? a.size : 0,
              uuid: typeof a.uuid === 'string' ? a.uuid : null,
            })),
        });
      }
      if (json.length < limit || options.limit !== undefined) break;
    }
    return { found: true, releases };
  }

  /**
   * The published versions of the generic package `owner/name`, newest first. Forgejo has no
   * per-package version list: `GET /api/v1/packages/{owner}?type=generic&q=<name>` pages through
   * one item per version of every package whose name contains `q` (case-insensitively), so the
   * exact name is kept here (names compare in lowercase, as Forgejo's lower_name). Not-found when
   * the owner is unknown or no version carries the name.
   */
  async listPackageVersions(
    owner: string,
    name: string,
    options: { signal?: AbortSignal; quiet?: boolean } = {},
  ): Promise<{ found: true; versions: UpstreamPackageVersion[] } | UpstreamNotFound> {
    const versions: UpstreamPackageVersion[] = [];
    const seen = new Set<string>();
    const wanted = name.toLowerCase();
    for (let page = 1; page <= MAX_PAGES; page++) {
      const path = `/api/v1/packages/${seg(owner)}?type=generic&q=${seg(name)}&limit=${PAGE}&page=${page}`;
      const json = await this.getJson(path, options);
      if (json === null) return { found: false };
      if (!Array.isArray(json)) throw this.protocol(path, 'a package list that is not a JSON array');
      for (const p of json as Array<Record<string, unknown>>) {
        if (typeof p.name !== 'string' || typeof p.version !== 'string') continue;
        if (p.type !== 'generic' || p.name.toLowerCase() !== wanted) continue;
        if (seen.has(p.version.toLowerCase())) continue;
        seen.add(p.version.toLowerCase());
        versions.push({ version: p.version, createdAt: String(p.created_at ?? '') });
      }
      if (json.length < PAGE) break;
    }
    return versions.length ? { found: true, versions } : { found: false };
  }

  /** The files of one generic package version with their sha256 (Forgejo stores it). */
  async listPackageFiles(
    owner: string,
    name: string,
    version: string,
    options: { signal?: AbortSignal } = {},
  ): Promise<{ found: true; files: UpstreamPackageFile[] } | UpstreamNotFound> {
    const path = `/api/v1/packages/${seg(owner)}/generic/${seg(name)}/${seg(version)}/files`;
    const json = await this.getJson(path, options);
    if (json === null) return { found: false };
    if (!Array.isArray(json)) throw this.protocol(path, 'a package file list that is not a JSON array');
    const files = (json as Array<Record<string, unknown>>)
      .filter((f) => typeof f.name === 'string')
      .map((f) => ({
        name: f.name as string,
        size: typeof f.Size === 'number' ? f.Size : typeof f.size === 'number' ? f.size : 0,
        sha256: typeof f.sha256 === 'string' && /^[a-f0-9]{64}$/.test(f.sha256) ? f.sha256 : null,
      }));
    return { found: true, files };
  }

  /** `GET /{owner}/{repo}/releases/download/{tag}/{filename}` (the web route; `latest` is Forgejo's alias). */
  openReleaseAsset(
    owner: string,
    repo: string,
    tag: string,
    filename: string,
    options: { range?: string; signal?: AbortSignal } = {},
  ): Promise<UpstreamDownload | UpstreamNotFound> {
    return this.open(`/${seg(owner)}/${seg(repo)}/releases/download/${seg(tag)}/${seg(filename)}`, options);
  }

  /** `GET /api/packages/{owner}/generic/{name}/{version}/{filename}`. */
  openPackageFile(
    owner: string,
    name: string,
    version: string,
    filename: string,
    options: { range?: string; signal?: AbortSignal } = {},
  ): Promise<UpstreamDownload | UpstreamNotFound> {
    return this.open(
      `/api/packages/${seg(owner)}/generic/${seg(name)}/${seg(version)}/${seg(filename)}`,
      options,
    );
  }

  private async open(
    path: string,
    options: { range?: string; signal?: AbortSignal },
  ): Promise<UpstreamDownload | UpstreamNotFound> {
    const spec: RequestSpec = {
      method: 'GET',
      path,
      range: options.range,
      signal: options.signal,
      followRedirects: true,
    };
    const ex = await this.send(spec);
    if (ex.status === 200 || ex.status === 206)
      return downloadOf(ex as Exchange & { status: 200 | 206 }, ex.target === 'storage');
    return this.failure(ex, spec);
  }

  /** JSON of a 200, null for a not-found; a missing scope or other failure throws, logged once. */
  private async getJson(path: string, options: { signal?: AbortSignal; quiet?: boolean }): Promise<unknown> {
    const spec = jsonGet(path, options);
    const ex = await this.send(spec);
    if (ex.status === 200) return this.body.readJson(ex, MAX_JSON_BYTES, `GET ${path.split('?')[0]}`);
    await this.failure(ex, spec);
    return null;
  }

  private async failure(ex: Exchange, spec: RequestSpec): Promise<UpstreamNotFound> {
    const request = `GET ${spec.path.split('?')[0]}`;
    const snippet = await this.body.snippet(ex);
    const scopeMessage = /required scope\(s\): \[([a-z:, ]+)\]/.exec(snippet);
    let err: UpstreamError | null = null;
    if (ex.status === 403 && scopeMessage) err = missingScope(scopeMessage[1], request, ex.status);
    else if (ex.status === 401 && snippet.startsWith('reqPackageAccess'))
      err = missingScope('read:package', request, 401);
    else if (ex.status === 404) return { found: false };
    if (!err) {
      const result = classifyUpstreamAnswer({
        ...answerBase(ex, request, subjectOf(spec.path)),
        bodySnippet: snippet,
      });
      if (!(result instanceof UpstreamError)) return { found: false };
      err = result;
    }
    throw spec.quiet ? err : this.failures.fail(err);
  }

  private protocol(path: string, what: string): UpstreamError {
    return this.failures.fail(
      new UpstreamProtocolError(
        `The upstream answered GET ${path.split('?')[0]} with ${what}. Fix: check that FORGEJO_BASE_URL is the Forgejo root URL.`,
        { request: `GET ${path.split('?')[0]}` },
      ),
    );
  }
}

/** What an API path is about, for the operator line: `owner/repo`, `owner/name`, or the owner. */
function subjectOf(path: string): string | undefined {
  const m =
    /^\/api\/v1\/repos\/([^/?]+)\/([^/?]+)/.exec(path) ??
    /^\/api\/(?:v1\/)?packages\/([^/?]+)\/generic\/([^/?]+)/.exec(path) ??
    /^\/api\/v1\/packages\/([^/?]+)()/.exec(path);
  if (!m) return undefined;
  const parts = [m[1], m[2]].filter(Boolean).map((p) => decodeURIComponent(p));
  return parts.join('/');
}

/** The operator line for a token without the scope a download surface needs. */
export function missingScope(scope: string, request: string, status: number): UpstreamAuthError {
  const needed = scope.includes('repository') ? 'read:repository' : 'read:package';
  const what = needed === 'read:repository' ? 'list releases' : 'read generic packages';
  return new UpstreamAuthError(
    'token_missing_scope',
    `Forgejo refused the service token on ${request} (${status}: the token lacks ${needed}): FORGEJO_API_TOKEN cannot ${what}. ` +
      `Fix: create a token with scopes read:package and read:repository for a user that can read the owner, and set FORGEJO_API_TOKEN.`,
    { request, upstreamStatus: status },
  );
}
