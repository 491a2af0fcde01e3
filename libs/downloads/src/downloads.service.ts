import { Readable } from 'node:stream';
import { Entitlement, EntitlementService, warningHeader } from '@gatehouse/entitlements';
import {
  downloadPathOf,
  isValidAssetFilename,
  isValidDownloadName,
  isValidDownloadVersion,
  OciError,
  refusalAnswer,
} from '@gatehouse/oci';
import type { UpstreamDownload, UpstreamRegistryClient, UpstreamRelease } from '@gatehouse/upstream';
import { DownloadCatalog } from './download-catalog.service';
import { DownloadAudit, DownloadDraft } from './download-audit';
import { DownloadKey, DownloadObject, DownloadStore } from './download-store';

/** The member a download request was authenticated as (Basic access key or Bearer token). */
export interface DownloadPrincipal {
  memberId: string;
  username: string;
  /** The access key's listing prefix and expiry, for its expiry `Warning` (none when absent). */
  accessKey?: { prefix: string; expiresAt: Date | null };
}

/**
 * The authorised request, as the access pipeline (libs/auth) left it: who, and their live
 * entitlement to the route's target, loaded once (null: not entitled; answered 404).
 */
export interface DownloadCaller {
  principal: DownloadPrincipal;
  grant: { kind: Kind; name: string; entitlement: Entitlement | null };
}

export interface DownloadRequest {
  method: 'GET' | 'HEAD';
  range?: string;
  signal: AbortSignal;
  /** `https://gateway.example.com`, for the download URLs of a listing. */
  baseUrl: string;
}

export interface DownloadReply {
  status: number;
  /** A list is sent as one header line per item (`Warning`). */
  headers: Record<string, string | string[]>;
  body?: Readable | Record<string, unknown>;
}

type Kind = 'releases' | 'packages';

/** How many of the newest entitled versions a package listing gives with their files. */
export const PACKAGE_VERSIONS_WITH_FILES = 20;

/**
 * The one answer for unentitled and unknown alike, so a member learns nothing of what exists; the
 * same table `gatehouse explain` words its answer from (a download answers alike for every ground).
 */
const notFound = (reason: string) =>
  new OciError(refusalAnswer('releases', 'target').code, { message: 'not found', reason });

/**
 * The download surface's decisions, after authentication: the member's live entitlement of the
 * kind (EntitlementService, cached ≤ AUTH_STATE_CACHE_SECONDS), the tag or version judged by the
 * one matcher (`tagAllowed`) before anything is asked upstream, the release or package metadata
 * from DownloadCatalog (TTL, stale-if-error), the bytes from DownloadStore (the blob cache).
 */
export class DownloadsService {
  constructor(
    private readonly entitlements: EntitlementService,
    private readonly catalog: DownloadCatalog,
    private readonly store: DownloadStore,
    private readonly audit: DownloadAudit,
    private readonly upstream: UpstreamRegistryClient,
  ) {}

  /** `GET /downloads/releases/<owner>/<repo>`: the entitled releases and their assets. */
  async listReleases(
    who: DownloadCaller,
    owner: string,
    repo: string,
    req: DownloadRequest,
  ): Promise<DownloadReply> {
    const draft = this.draft('download.list', 'releases', who.principal, owner, repo, req, null, null);
    try {
      const entitlement = this.entitlement(who, 'releases', owner, repo);
      const { releases, stale } = await this.releases(owner, repo);
      const entitled = releases.filter((r) => this.admits(entitlement, r.tag));
      const items = entitled.map((r) => ({
        tag: r.tag,
        name: r.name,
        prerelease: r.prerelease,
        publishedAt: r.publishedAt,
        assets: r.assets.map((a) => {
          const sha256 = this.store.knownSha256({
            key: assetKey(owner, repo, r.tag, a),
            revision: assetRevision(a),
            sha256: null,
          });
          return {
            name: a.name,
            size: a.size,
            sha256,
            url: `${req.baseUrl}${downloadPathOf({ kind: 'release-asset', owner, repo, tag: r.tag, filename: a.name })}`,
          };
        }),
      }));
      draft.details = { count: items.length };
      this.audit.allowed(draft, 200, null);
      return {
        status: 200,
        headers: {
          ...warningHeader(this.warnings(who, entitlement, stale)),
          'Cache-Control': 'private, no-cache',
        },
        body: { owner, repository: repo, releases: items },
      };
    } catch (err) {
      this.audit.failed(draft, err);
      throw err;
    }
  }

  /**
   * `GET /downloads/packages/<owner>/<name>`: the versions of a generic package the member's rules
   * admit (judged in lowercase, as the file route judges them), newest first, and the files (size,
   * sha256, URL) of the newest `PACKAGE_VERSIONS_WITH_FILES` of them; older ones carry `files: null`
   * (one upstream question per version, cached: the page stays cheap whatever the history).
   */
  async listPackage(
    who: DownloadCaller,
    owner: string,
    name: string,
    req: DownloadRequest,
  ): Promise<DownloadReply> {
    const draft = this.draft('download.list', 'packages', who.principal, owner, name, req, null, null);
    try {
      const entitlement = this.entitlement(who, 'packages', owner, name);
      const answer = await this.catalog.packageVersions(owner, name);
      if (!answer.value) throw notFound('repository_unknown_upstream');
      const entitled = answer.value.filter((v) => this.admits(entitlement, v.version));
      let stale = answer.stale;
      const versions = await Promise.all(
        entitled.map(async (v, i) => {
          const item = { version: v.version, publishedAt: v.createdAt };
          if (i >= PACKAGE_VERSIONS_WITH_FILES) return { ...item, files: null };
          const listed = await this.catalog.packageFiles(owner, name, this.admitted(entitlement, v.version)!);
          stale = stale ?? listed.stale;
          const files = (listed.value ?? []).map((f) => ({
            name: f.name,
            size: f.size,
            sha256: f.sha256,
            url: `${req.baseUrl}${downloadPathOf({ kind: 'package-file', owner, name, version: v.version, filename: f.name })}`,
          }));
          return { ...item, files };
        }),
      );
      draft.details = { count: versions.length };
      this.audit.allowed(draft, 200, null);
      return {
        status: 200,
        headers: {
          ...warningHeader(staleWarning(stale), this.entitlements.expiryWarning(entitlement)),
          'Cache-Control': 'private, no-cache',
        },
        body: { owner, name, versions },
      };
    } catch (err) {
      this.audit.failed(draft, err);
      throw err;
    }
  }

  /** `GET|HEAD /downloads/releases/<owner>/<repo>/<tag>/<filename>`; `latest` is the newest entitled release. */
  async releaseAsset(
    who: DownloadCaller,
    owner: string,
    repo: string,
    tag: string,
    filename: string,
    req: DownloadRequest,
  ): Promise<DownloadReply> {
    const draft = this.draft(
      'download',
      'releases',
      who.principal,
      owner,
      repo,
      req,
      `${tag}/${filename}`,
      filename,
    );
    try {
      const entitlement = this.entitlement(who, 'releases', owner, repo);
      if (!isValidAssetFilename(filename)) throw notFound('asset_unknown');
      const asked = tag;
      if (asked !== 'latest' && !this.admits(entitlement, asked)) throw notFound('tag_not_entitled');
      const { releases, stale } = await this.releases(owner, repo);
      const release =
        releases.find((r) => r.tag === asked && this.admits(entitlement, r.tag)) ??
        (asked === 'latest' ? newestEntitled(releases, (t) => this.admits(entitlement, t)) : undefined);
      if (!release) throw notFound(asked === 'latest' ? 'no_entitled_release' : 'release_unknown');
      const asset = release.assets.find((a) => a.name === filename);
      if (!asset) throw notFound('asset_unknown');
      draft.reference = `${release.tag}/${filename}`;
      if (asked !== release.tag) draft.details = { ...draft.details, requestedTag: asked };
      const object: DownloadObject = {
        key: assetKey(owner, repo, release.tag, asset),
        revision: assetRevision(asset),
        sha256: null,
        size: asset.size,
        open: (range, signal) =>
          this.found(
            this.upstream.downloads.openReleaseAsset(owner, repo, release.tag, filename, { range, signal }),
          ),
      };
      const warnings = this.warnings(who, entitlement, stale);
      return await this.serve(draft, object, asset.uuid ?? assetRevision(asset), filename, warnings, req);
    } catch (err) {
      this.audit.failed(draft, err);
      throw err;
    }
  }

  /**
   * `GET /downloads/packages/<owner>/<name>/<version>`: the version's files (name, size, sha256,
   * url) when the member's rules admit the version; unentitled answers the same 404 as unknown.
   */
  async listPackageFiles(
    who: DownloadCaller,
    owner: string,
    name: string,
    version: string,
    req: DownloadRequest,
  ): Promise<DownloadReply> {
    const draft = this.draft('download.list', 'packages', who.principal, owner, name, req, version, null);
    try {
      const entitlement = this.entitlement(who, 'packages', owner, name);
      const judged = this.admitted(entitlement, version);
      if (judged === null) throw notFound('tag_not_entitled');
      draft.reference = judged;
      const answer = await this.catalog.packageFiles(owner, name, judged);
      if (!answer.value) throw notFound('release_unknown');
      const files = answer.value.map((f) => ({
        name: f.name,
        size: f.size,
        sha256: f.sha256,
        url: `${req.baseUrl}${downloadPathOf({ kind: 'package-file', owner, name, version: judged, filename: f.name })}`,
      }));
      draft.details = { count: files.length };
      this.audit.allowed(draft, 200, null);
      return {
        status: 200,
        headers: {
          ...warningHeader(staleWarning(answer.stale), this.entitlements.expiryWarning(entitlement)),
          'Cache-Control': 'private, no-cache',
        },
        body: { owner, package: name, version: judged, files },
      };
    } catch (err) {
      this.audit.failed(draft, err);
      throw err;
    }
  }

  /** `GET|HEAD /downloads/packages/<owner>/<name>/<version>/<filename>`. */
  async packageFile(
    who: DownloadCaller,
    owner: string,
    name: string,
    version: string,
    filename: string,
    req: DownloadRequest,
  ): Promise<DownloadReply> {
    const draft = this.draft(
      'download',
      'packages',
      who.principal,
      owner,
      name,
      req,
      `${version}/${filename}`,
      filename,
    );
    try {
      const entitlement = this.entitlement(who, 'packages', owner, name);
      if (!isValidAssetFilename(filename)) throw notFound('asset_unknown');
      // The version as judged (lowercase: Forgejo's lookup form) is the one asked upstream.
      const judged = this.admitted(entitlement, version);
      if (judged === null) throw notFound('tag_not_entitled');
      draft.reference = `${judged}/${filename}`;
      const answer = await this.catalog.packageFiles(owner, name, judged);
      const file = answer.value?.find((f) => f.name === filename);
      if (!file) throw notFound('asset_unknown');
      const object: DownloadObject = {
        key: {
          kind: 'packages',
          owner: owner.toLowerCase(),
          name: name.toLowerCase(),
          version: judged,
          filename,
        },
        revision: `${file.sha256 ?? ''}#${file.size}`,
        sha256: file.sha256,
        size: file.size,
        open: (range, signal) =>
          this.found(
            this.upstream.downloads.openPackageFile(owner, name, judged, filename, { range, signal }),
          ),
      };
      const etag = file.sha256 ?? `package:${owner}/${name}@${judged}/${filename}`;
      const warnings = this.warnings(who, entitlement, answer.stale);
      return await this.serve(draft, object, etag, filename, warnings, req);
    } catch (err) {
      this.audit.failed(draft, err);
      throw err;
    }
  }

  private async serve(
    draft: DownloadDraft,
    object: DownloadObject,
    etag: string,
    filename: string,
    warnings: Array<string | null>,
    req: DownloadRequest,
  ): Promise<DownloadReply> {
    const known = this.store.knownSha256(object);
    const headers: Record<string, string | string[]> = {
      'Content-Type': 'application/octet-stream',
      'Accept-Ranges': 'bytes',
      ETag: `"${etag}"`,
      'Content-Disposition': contentDisposition(filename),
      'Cache-Control': 'private, max-age=300',
      'X-Content-Type-Options': 'nosniff',
      ...warningHeader(...warnings),
    };
    if (known) {
      headers['X-Checksum-Sha256'] = known;
      draft.digest = `sha256:${known}`;
    }
    if (req.method === 'HEAD') {
      headers['Content-Length'] = String(object.size);
      this.audit.allowed(draft, 200, 0);
      return { status: 200, headers };
    }
    const opened = await this.store.open(object, req.range, req.signal);
    draft.cache = opened.source;
    headers['Content-Length'] = String(opened.length);
    if (opened.contentRange) headers['Content-Range'] = opened.contentRange;
    return {
      status: opened.status,
      headers,
      body: this.audit.streamed(draft, opened.status, opened.body, opened.length),
    };
  }

  /** The reply's `Warning` texts: stale upstream data, then the grant's and the key's expiry. */
  private warnings(
    who: DownloadCaller,
    entitlement: Entitlement,
    stale: Parameters<typeof staleWarning>[0],
  ): Array<string | null> {
    return [
      staleWarning(stale),
      this.entitlements.expiryWarning(entitlement),
      this.entitlements.keyExpiryWarning(who.principal.accessKey),
    ];
  }

  /** The entitlement the access pipeline loaded for this target, or the 404 that tells nothing. */
  private entitlement(who: DownloadCaller, kind: Kind, owner: string, name: string): Entitlement {
    const target = `${owner}/${name}`.toLowerCase();
    if (who.grant.kind !== kind || who.grant.name !== target) {
      throw new Error(`the download grant is for ${who.grant.kind}:${who.grant.name}, not ${kind}:${target}`);
    }
    if (!isValidDownloadName(target)) throw notFound('name_invalid');
    if (!who.grant.entitlement) throw notFound('repository_not_entitled');
    return who.grant.entitlement;
  }

  private admits(entitlement: Entitlement, tag: string): boolean {
    return this.admitted(entitlement, tag) !== null;
  }

  /** The tag or version in the form the matcher judged it (and the upstream resolves), or null. */
  private admitted(entitlement: Entitlement, tag: string): string | null {
    const kind = entitlement.kind === 'packages' ? 'packages' : 'releases';
    if (!isValidDownloadVersion(tag, kind)) return null;
    return this.entitlements.tagAllowed(entitlement, tag)?.tag ?? null;
  }

  private async releases(
    owner: string,
    repo: string,
  ): Promise<{ releases: UpstreamRelease[]; stale: { ageSeconds: number } | null }> {
    const answer = await this.catalog.releases(owner.toLowerCase(), repo.toLowerCase());
    if (!answer.value) throw notFound('repository_unknown_upstream');
    return { releases: answer.value, stale: answer.stale };
  }

  private async found(
    opening: Promise<UpstreamDownload | { found: false }>,
  ): Promise<UpstreamDownload | null> {
    const result = await opening;
    return result.found ? result : null;
  }

  private draft(
    action: DownloadDraft['action'],
    kind: Kind,
    who: DownloadPrincipal,
    owner: string,
    name: string,
    req: DownloadRequest,
    reference: string | null,
    asset: string | null,
  ): DownloadDraft {
    return {
      action,
      kind,
      method: req.method,
      startedAt: performance.now(),
      memberId: who.memberId,
      username: who.username,
      target: `${kind}:${owner}/${name}`.toLowerCase(),
      reference,
      asset,
    };
  }
}

/** A release asset for the cache: (kind, owner, repository, tag, filename), whoever asks. */
function assetKey(owner: string, repo: string, tag: string, asset: { name: string }): DownloadKey {
  return {
    kind: 'releases',
    owner: owner.toLowerCase(),
    name: repo.toLowerCase(),
    version: tag,
    filename: asset.name,
  };
}

/** This upload of the asset: a replaced asset (new uuid or size) is learnt afresh. */
function assetRevision(asset: { uuid: string | null; size: number }): string {
  return `${asset.uuid ?? ''}#${asset.size}`;
}

/** Newest first as the upstream lists them; prereleases only when no stable release is entitled. */
function newestEntitled(
  releases: UpstreamRelease[],
  admits: (tag: string) => boolean,
): UpstreamRelease | undefined {
  const entitled = releases.filter((r) => admits(r.tag));
  const byDate = (a: UpstreamRelease, b: UpstreamRelease) => b.publishedAt.localeCompare(a.publishedAt);
  return [...entitled].filter((r) => !r.prerelease).sort(byDate)[0] ?? [...entitled].sort(byDate)[0];
}

function staleWarning(stale: { ageSeconds: number } | null): string | null {
  return stale
    ? `299 - "upstream unavailable; serving the last known release metadata, checked ${stale.ageSeconds} s ago"`
    : null;
}

/** `attachment; filename="…"` (ASCII fallback) plus RFC 5987 `filename*` for any name. */
export function contentDisposition(filename: string): string {
  const ascii = filename.replace(/[^\x20-\x7e]|["\\]/g, '_');
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(filename)}`;
}
