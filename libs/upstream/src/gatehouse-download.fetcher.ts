import type { UpstreamConfig } from '@gatehouse/config';
import { refusedKeyMessage, upstreamMember } from './explain-hint';
import { UpstreamBodyReader } from './upstream-body.reader';
import {
  downloadOf,
  type DownloadFetcher,
  type UpstreamDownload,
  type UpstreamPackageFile,
  type UpstreamPackageVersion,
  type UpstreamRelease,
} from './upstream-download.fetcher';
import { basicCredentials, Exchange, jsonGet, RequestSpec } from './upstream-exchange';
import { answerBase, UpstreamFailureReporter } from './upstream-failure.reporter';
import { classifyUpstreamAnswer } from './upstream-failure.classifier';
import { UpstreamTransport } from './upstream-transport';
import { UpstreamAuthError, UpstreamError, UpstreamProtocolError } from './upstream.error';
import { UpstreamNotFound } from './upstream.types';

const MAX_JSON_BYTES = 8 * 1024 * 1024;
const seg = (s: string) => encodeURIComponent(s);
const SHA256 = /^[a-f0-9]{64}$/;

/**
 * Another Gatehouse as the download upstream (UPSTREAM_KIND=gatehouse): its kind-first routes
 * `/downloads/releases/<owner>/<repo>[/<tag>/<file>]` and `/downloads/packages/…`, with Basic of
 * a member's username and access key there (FORGEJO_API_USERNAME / FORGEJO_API_TOKEN). The
 * upstream filters listings by that member's entitlements, so what this gateway lists is already
 * the intersection with its own. An asset's revision is its sha256 when the upstream knows it.
 */
export class GatehouseDownloadFetcher implements DownloadFetcher {
  constructor(
    private readonly config: UpstreamConfig,
    private readonly transport: UpstreamTransport,
    private readonly body: UpstreamBodyReader,
    private readonly failures: UpstreamFailureReporter,
  ) {}

  private send(spec: RequestSpec): Promise<Exchange> {
    return this.transport.send(spec, {
      header: basicCredentials(this.config),
      kind: 'basic',
      fromCache: false,
    });
  }

  async listReleases(
    owner: string,
    repo: string,
    options: { signal?: AbortSignal; quiet?: boolean; limit?: number } = {},
  ): Promise<{ found: true; releases: UpstreamRelease[] } | UpstreamNotFound> {
    const listed = await this.listing(`/downloads/releases/${seg(owner)}/${seg(repo)}`, 'releases', options);
    if (!listed.found) return listed;
    const releases: UpstreamRelease[] = [];
    for (const r of listed.items) {
      if (typeof r.tag !== 'string') continue;
      const assets = Array.isArray(r.assets) ? (r.assets as Array<Record<string, unknown>>) : [];
      releases.push({
        tag: r.tag,
        name: typeof r.name === 'string' ? r.name : r.tag,
        prerelease: r.prerelease === true,
        publishedAt: typeof r.publishedAt === 'string' ? r.publishedAt : '',
        assets: assets
          .filter((a) => typeof a.name === 'string')
          .map((a) => ({
            name: a.name as string,
            size: typeof a.size === 'number' ? a.size : 0,
            uuid: typeof a.sha256 === 'string' && SHA256.test(a.sha256) ? a.sha256 : null,
          })),
      });
    }
    return { found: true, releases: options.limit ? releases.slice(0, options.limit) : releases };
  }

  /**
   * The versions the upstream Gatehouse lists to this gateway's member
   * (`/downloads/packages/<owner>/<name>`: already filtered by its entitlements), newest first.
   */
  async listPackageVersions(
    owner: string,
    name: string,
    options: { signal?: AbortSignal; quiet?: boolean } = {},
  ): Promise<{ found: true; versions: UpstreamPackageVersion[] } | UpstreamNotFound> {
    const listed = await this.listing(`/downloads/packages/${seg(owner)}/${seg(name)}`, 'versions', options);
    if (!listed.found) return listed;
    const versions = listed.items
      .filter((v) => typeof v.version === 'string')
      .map((v) => ({
        version: v.version as string,
        createdAt: typeof v.publishedAt === 'string' ? v.publishedAt : '',
      }));
    return { found: true, versions };
  }

  /**
   * A version's files from the upstream's `/downloads/packages/<owner>/<name>/<version>` (its own
   * member's rules already applied): name, size and sha256, so a file is judged before fetching.
   */
  async listPackageFiles(
    owner: string,
    name: string,
    version: string,
    options: { signal?: AbortSignal } = {},
  ): Promise<{ found: true; files: UpstreamPackageFile[] } | UpstreamNotFound> {
    const path = `/downloads/packages/${seg(owner)}/${seg(name)}/${seg(version)}`;
    const listed = await this.listing(path, 'files', options);
    if (!listed.found) return listed;
    return { found: true, files: packageFilesOf(listed.items) };
  }

  /** One of the upstream Gatehouse's JSON listings: the array under `field`, each item an object. */
  private async listing(
    path: string,
    field: 'releases' | 'versions' | 'files',
    options: { signal?: AbortSignal; quiet?: boolean },
  ): Promise<{ found: true; items: Array<Record<string, unknown>> } | UpstreamNotFound> {
    const spec = jsonGet(path, options);
    const ex = await this.send(spec);
    if (ex.status !== 200) return this.failure(ex, spec);
    const json = (await this.body.readJson(ex, MAX_JSON_BYTES, `GET ${path}`)) as Record<
      string,
      unknown
    > | null;
    const items = json?.[field];
    if (!Array.isArray(items)) throw this.protocol(path, `a listing without a ${field} array`);
    return {
      found: true,
      items: items.filter((i): i is Record<string, unknown> => !!i && typeof i === 'object'),
    };
  }

  openReleaseAsset(
    owner: string,
    repo: string,
    tag: string,
    filename: string,
    options: { range?: string; signal?: AbortSignal } = {},
  ): Promise<UpstreamDownload | UpstreamNotFound> {
    return this.open(`/downloads/releases/${seg(owner)}/${seg(repo)}/${seg(tag)}/${seg(filename)}`, options);
  }

  openPackageFile(
    owner: string,
    name: string,
    version: string,
    filename: string,
    options: { range?: string; signal?: AbortSignal } = {},
  ): Promise<UpstreamDownload | UpstreamNotFound> {
    return this.open(
      `/downloads/packages/${seg(owner)}/${seg(name)}/${seg(version)}/${seg(filename)}`,
      options,
    );
  }

  private async open(
    path: string,
    options: { range?: string; signal?: AbortSignal },
  ): Promise<UpstreamDownload | UpstreamNotFound> {
    const spec: RequestSpec = { method: 'GET', path, range: options.range, signal: options.signal };
    const ex = await this.send(spec);
    if (ex.status !== 200 && ex.status !== 206) return this.failure(ex, spec);
    return downloadOf(ex as Exchange & { status: 200 | 206 }, false);
  }

  private async failure(ex: Exchange, spec: RequestSpec): Promise<UpstreamNotFound> {
    const request = `GET ${spec.path}`;
    const snippet = await this.body.snippet(ex);
    if (ex.status === 404) return { found: false };
    let err: UpstreamError;
    if (ex.status === 401) err = refusedKey(request, this.config.username);
    else {
      const result = classifyUpstreamAnswer({ ...answerBase(ex, request, undefined), bodySnippet: snippet });
      if (!(result instanceof UpstreamError)) return { found: false };
      err = result;
    }
    throw spec.quiet ? err : this.failures.fail(err);
  }

  private protocol(path: string, what: string): UpstreamError {
    return this.failures.fail(
      new UpstreamProtocolError(
        `The upstream Gatehouse answered GET ${path} with ${what}. Fix: check that FORGEJO_BASE_URL is its root URL.`,
        { request: `GET ${path}` },
      ),
    );
  }
}

/** The files of an upstream Gatehouse's package listing, each with a well-formed name and size. */
export function packageFilesOf(files: Array<Record<string, unknown>>): UpstreamPackageFile[] {
  return files
    .filter((f) => f && typeof f.name === 'string' && f.name.length > 0)
    .map((f) => ({
      name: f.name as string,
      size: typeof f.size === 'number' && Number.isSafeInteger(f.size) && f.size >= 0 ? f.size : 0,
      sha256: typeof f.sha256 === 'string' && SHA256.test(f.sha256) ? f.sha256 : null,
    }));
}

/** The operator line when the upstream Gatehouse refuses this gateway's access key. */
export function refusedKey(request: string, username: string): UpstreamAuthError {
  return new UpstreamAuthError('token_invalid', refusedKeyMessage(upstreamMember(username), request, 401), {
    request,
    upstreamStatus: 401,
  });
}
