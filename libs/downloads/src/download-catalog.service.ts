import { BoundedCache } from '@gatehouse/bounded-cache';
import { Clock } from '@gatehouse/observability';
import type { UpstreamPackageFile, UpstreamPackageVersion, UpstreamRelease } from '@gatehouse/upstream';
import { UpstreamError } from '@gatehouse/upstream';

/** What the catalog asks upstream (the port; the real one is the upstream client's download fetcher). */
export interface DownloadUpstream {
  listReleases(owner: string, repo: string): Promise<UpstreamRelease[] | null>;
  listPackageVersions(owner: string, name: string): Promise<UpstreamPackageVersion[] | null>;
  listPackageFiles(owner: string, name: string, version: string): Promise<UpstreamPackageFile[] | null>;
}

export interface CatalogOptions {
  /** How long an upstream answer is used before it is asked again (OCI_TAG_TTL_SECONDS). */
  ttlMs: number;
  /** How long past the TTL a known answer is served when the upstream fails (OCI_TAG_STALE_MAX_SECONDS). */
  staleMaxMs: number;
  maxEntries: number;
}

/** An answer, and how old it is when the upstream could not be asked (stale-if-error). */
export interface CatalogAnswer<T> {
  value: T | null;
  stale: { ageSeconds: number } | null;
}

/**
 * Release lists, package version lists and package file lists, the metadata that maps (repository, tag, filename) to
 * an asset: kept for the TTL, then asked again (one question per key at a time); when the
 * upstream fails, a known answer younger than TTL + stale-max is served and marked stale so the
 * reply carries `Warning: 299`, as tag resolutions do.
 */
export class DownloadCatalog {
  private readonly entries: BoundedCache<string, unknown>;

  constructor(
    private readonly upstream: DownloadUpstream,
    clock: Clock,
    options: CatalogOptions,
  ) {
    this.entries = new BoundedCache({
      max: options.maxEntries,
      ttlMs: options.ttlMs,
      staleIfErrorMs: options.staleMaxMs,
      staleOn: (error) => error instanceof UpstreamError,
      now: () => clock.now(),
    });
  }

  releases(owner: string, repo: string): Promise<CatalogAnswer<UpstreamRelease[]>> {
    return this.cached(`r:${owner}/${repo}`, () => this.upstream.listReleases(owner, repo));
  }

  /** The published versions of a generic package, newest first (names compare in lowercase). */
  packageVersions(owner: string, name: string): Promise<CatalogAnswer<UpstreamPackageVersion[]>> {
    return this.cached(`v:${owner}/${name}`.toLowerCase(), () =>
      this.upstream.listPackageVersions(owner, name),
    );
  }

  /**
   * The release tags or package versions published now, newest first, for a rule preview; null
   * when the upstream knows no such repository or package.
   */
  async published(kind: 'releases' | 'packages', owner: string, name: string): Promise<string[] | null> {
    if (kind === 'releases') {
      const { value } = await this.releases(owner.toLowerCase(), name.toLowerCase());
      return value ? value.map((r) => r.tag) : null;
    }
    const { value } = await this.packageVersions(owner, name);
    return value ? value.map((v) => v.version) : null;
  }

  packageFiles(owner: string, name: string, version: string): Promise<CatalogAnswer<UpstreamPackageFile[]>> {
    return this.cached(`p:${owner}/${name}@${version}`, () =>
      this.upstream.listPackageFiles(owner, name, version),
    );
  }

  private async cached<T>(key: string, load: () => Promise<T | null>): Promise<CatalogAnswer<T>> {
    const answer = await this.entries.fetch(key, load);
    const stale = answer.stale ? { ageSeconds: Math.round(answer.stale.ageMs / 1000) } : null;
    return { value: answer.value as T | null, stale };
  }
}
