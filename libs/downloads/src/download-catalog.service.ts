import { Clock } from '@gatehouse/observability';
import type { UpstreamPackageFile, UpstreamRelease } from '@gatehouse/upstream';
import { UpstreamError } from '@gatehouse/upstream';

/** What the catalog asks upstream (the port; the real one is the upstream client's download fetcher). */
export interface DownloadUpstream {
  listReleases(owner: string, repo: string): Promise<UpstreamRelease[] | null>;
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

interface Entry<T> {
  at: number;
  value: T | null;
}

/**
 * Release lists and package file lists, the metadata that maps (repository, tag, filename) to
 * an asset: kept for the TTL, then asked again (one question per key at a time); when the
 * upstream fails, a known answer younger than TTL + stale-max is served and marked stale so the
 * reply carries `Warning: 299`, as tag resolutions do.
 */
export class DownloadCatalog {
  private readonly entries = new Map<string, Entry<unknown>>();
  private readonly running = new Map<string, Promise<CatalogAnswer<unknown>>>();

  constructor(
    private readonly upstream: DownloadUpstream,
    private readonly clock: Clock,
    private readonly options: CatalogOptions,
  ) {}

  releases(owner: string, repo: string): Promise<CatalogAnswer<UpstreamRelease[]>> {
    return this.cached(`r:${owner}/${repo}`, () => this.upstream.listReleases(owner, repo));
  }

  packageFiles(owner: string, name: string, version: string): Promise<CatalogAnswer<UpstreamPackageFile[]>> {
    return this.cached(`p:${owner}/${name}@${version}`, () =>
      this.upstream.listPackageFiles(owner, name, version),
    );
  }

  private cached<T>(key: string, load: () => Promise<T | null>): Promise<CatalogAnswer<T>> {
    const now = this.clock.now();
    const hit = this.entries.get(key) as Entry<T> | undefined;
    if (hit && now - hit.at < this.options.ttlMs) return Promise.resolve({ value: hit.value, stale: null });
    const joined = this.running.get(key) as Promise<CatalogAnswer<T>> | undefined;
    if (joined) return joined;
    const run = (async (): Promise<CatalogAnswer<T>> => {
      try {
        const value = await load();
        if (this.entries.size >= this.options.maxEntries)
          this.entries.delete(this.entries.keys().next().value!);
        this.entries.delete(key);
        this.entries.set(key, { at: this.clock.now(), value });
        return { value, stale: null };
      } catch (err) {
        const age = this.clock.now() - (hit?.at ?? 0);
        if (hit && err instanceof UpstreamError && age < this.options.ttlMs + this.options.staleMaxMs) {
          return { value: hit.value, stale: { ageSeconds: Math.round(age / 1000) } };
        }
        throw err;
      }
    })().finally(() => this.running.delete(key));
    this.running.set(key, run);
    return run;
  }
}
