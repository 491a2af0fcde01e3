import { LRUCache } from 'lru-cache';
import { BoundedCache, SingleFlight } from '@gatehouse/bounded-cache';
import { Clock } from '@gatehouse/observability';
import { isValidTag } from '@gatehouse/oci';
import { ManifestFetchTrace } from './manifest-fetch.trace';
import { ManifestStore, StoredManifest } from './manifest-store.service';
import { NoopPullThroughMetrics, PullThroughMetrics } from './pull-through-metrics.interface';
import { UpstreamSource } from './upstream-source.interface';

export interface PullThroughOptions {
  /** How long a tag → digest answer is trusted before upstream is asked again. */
  tagTtlMs: number;
  /** How long past its check a tag may still be served while upstream fails. */
  tagStaleMaxMs: number;
  /** Bound on remembered tags and tag lists (entries). */
  maxTagEntries: number;
}

export interface TagResolution {
  digest: string;
  /** Set when upstream failed and the last known answer is served. */
  stale?: { ageSeconds: number; cause: unknown };
}

interface Flight {
  value: unknown;
  /** What the work fetched, for the requests that joined it. */
  trace: ManifestFetchTrace;
}

/**
 * The read side of the registry, upstream-backed: tags resolve to digests with a TTL (and a
 * bounded stale answer when upstream fails), manifests by digest are immutable and never asked
 * of upstream twice, and reachability (which digests an entitled tag makes pullable) is worked
 * out from those manifests.
 *
 * This service never contacts upstream about a digest it has not found reachable first; the
 * only upstream questions it asks on its own are tag lists and tag manifests. Tags in an
 * upstream list that are not valid OCI tags are skipped (and reported): no request could name
 * them, and asking upstream for one would fail the whole lookup.
 *
 * Methods that may fetch manifests take the request's `ManifestFetchTrace`, so the request that
 * serves a manifest knows whether its own work (or work it joined) fetched it.
 */
export class PullThroughService {
  /** `name\0tag` → digest: TTL, stale-if-error, LRU-bounded. */
  private readonly tags: BoundedCache<string, string | null>;
  private readonly tagLists: BoundedCache<string, string[] | null>;
  /** Manifest digest → what it makes pullable: immutable, LRU-bounded. */
  private readonly closures: LRUCache<string, Map<string, number>>;
  private readonly flights = new SingleFlight<string, Flight>();

  constructor(
    private readonly upstream: UpstreamSource,
    private readonly manifests: ManifestStore,
    clock: Clock,
    options: PullThroughOptions,
    private readonly metrics: PullThroughMetrics = new NoopPullThroughMetrics(),
  ) {
    const ttl = {
      max: options.maxTagEntries,
      ttlMs: options.tagTtlMs,
      staleIfErrorMs: options.tagStaleMaxMs,
      now: () => clock.now(),
    };
    this.tags = new BoundedCache(ttl);
    this.tagLists = new BoundedCache(ttl);
    this.closures = new LRUCache({ max: options.maxTagEntries });
  }

  /** Tag → digest. Null when upstream says the tag (or repository) does not exist. */
  resolveTag(name: string, tag: string, trace?: ManifestFetchTrace): Promise<TagResolution | null> {
    return this.once(`tag\u0000${name}\u0000${tag}`, trace, (own) => this.resolveTagNow(name, tag, own));
  }

  private async resolveTagNow(
    name: string,
    tag: string,
    trace: ManifestFetchTrace,
  ): Promise<TagResolution | null> {
    const answer = await this.tags.fetch(
      `${name}\u0000${tag}`,
      async (previous) => {
        if (previous?.value) {
          // Revalidate cheaply: a HEAD says whether the tag still points where it did.
          const head = await this.upstream.headManifest(name, tag);
          if (!head) return null;
          if (head.digest === previous.value && (await this.manifests.get(head.digest))) return head.digest;
        }
        const fetched = await this.upstream.getManifest(name, tag);
        if (!fetched) return null;
        await this.manifests.put(fetched.digest, fetched.mediaType, fetched.body);
        trace.fetchedHere(fetched.digest);
        return fetched.digest;
      },
      { keep: (digest) => digest !== null },
    );
    if (answer.value === null) return null;
    if (!answer.stale) return { digest: answer.value };
    const { ageMs, cause } = answer.stale;
    return { digest: answer.value, stale: { ageSeconds: Math.round(ageMs / 1000), cause } };
  }

  /**
   * A manifest by digest: memory, disk, then upstream. Callers must have established that the
   * digest is reachable from an entitled tag before calling.
   */
  getManifest(name: string, digest: string, trace?: ManifestFetchTrace): Promise<StoredManifest | null> {
    return this.once(`manifest\u0000${digest}`, trace, async (own) => {
      const cached = await this.manifests.get(digest);
      if (cached) return cached;
      const fetched = await this.upstream.getManifest(name, digest);
      if (!fetched) return null;
      const stored = await this.manifests.put(fetched.digest, fetched.mediaType, fetched.body);
      own.fetchedHere(stored.digest);
      return stored;
    });
  }

  /**
   * Every digest a manifest makes pullable, with the size its descriptor declares (-1 when
   * unknown): itself, its child manifests (for an index) and the config and layer blobs of each
   * image manifest.
   */
  async closure(name: string, digest: string, trace?: ManifestFetchTrace): Promise<Map<string, number>> {
    const known = this.closures.get(digest);
    if (known) return known;
    const result = new Map<string, number>([[digest, -1]]);
    const manifest = await this.getManifest(name, digest, trace);
    if (manifest) {
      result.set(digest, manifest.body.length);
      for (const blob of manifest.parsed.blobs) result.set(blob.digest, blob.size);
      for (const child of manifest.parsed.manifests) {
        result.set(child.digest, child.size);
        // Indexes hold image manifests only (OCI and Forgejo both refuse nested indexes).
        const childManifest = await this.getManifest(name, child.digest, trace);
        if (!childManifest) continue;
        for (const blob of childManifest.parsed.blobs) result.set(blob.digest, blob.size);
        for (const grandChild of childManifest.parsed.manifests)
          result.set(grandChild.digest, grandChild.size);
      }
    }
    this.closures.set(digest, result);
    return result;
  }

  /**
   * Finds an entitled tag from which `digest` is reachable, or null. Tags already resolved are
   * tried first (the usual case: the client fetched the manifest a moment ago); then the
   * upstream tag list, in order, until one reaches the digest. `admits` is asked before a tag
   * is resolved (it may itself ask about reachability, as artifact tags do of their subject).
   */
  async findReachingTag(
    name: string,
    digest: string,
    admits: (tag: string) => boolean | Promise<boolean>,
    trace?: ManifestFetchTrace,
  ): Promise<{ tag: string; size: number } | null> {
    const tried = new Set<string>();
    const prefix = `${name}\u0000`;
    for (const key of this.tags.keys()) {
      if (!key.startsWith(prefix)) continue;
      const tag = key.slice(prefix.length);
      if (!(await admits(tag))) continue;
      tried.add(tag);
      const size = await this.sizeIfReaches(name, tag, digest, trace);
      if (size !== null) return { tag, size };
    }
    const listed = await this.listTags(name);
    for (const tag of listed?.tags ?? []) {
      if (tried.has(tag) || !(await admits(tag))) continue;
      const size = await this.sizeIfReaches(name, tag, digest, trace);
      if (size !== null) return { tag, size };
    }
    return null;
  }

  private async sizeIfReaches(
    name: string,
    tag: string,
    digest: string,
    trace: ManifestFetchTrace | undefined,
  ): Promise<number | null> {
    const resolved = await this.resolveTag(name, tag, trace);
    if (!resolved) return null;
    return (await this.closure(name, resolved.digest, trace)).get(digest) ?? null;
  }

  /**
   * Upstream tags of a repository (TTL-cached, stale on failure), valid OCI tags only. Null:
   * repository unknown.
   */
  listTags(name: string): Promise<{ tags: string[]; stale?: { ageSeconds: number } } | null> {
    return this.once(`tags\u0000${name}`, undefined, async () => {
      const answer = await this.tagLists.fetch(
        name,
        async () => {
          const listed = await this.upstream.listTags(name);
          if (!listed) return null;
          const tags = listed.filter(isValidTag);
          if (tags.length < listed.length) {
            this.metrics.invalidUpstreamTags(
              name,
              listed.filter((t) => !isValidTag(t)),
            );
          }
          return tags;
        },
        { keep: (tags) => tags !== null },
      );
      if (answer.value === null) return null;
      if (!answer.stale) return { tags: answer.value };
      return { tags: answer.value, stale: { ageSeconds: Math.round(answer.stale.ageMs / 1000) } };
    });
  }

  /**
   * Concurrent identical questions share one upstream round trip. The caller's trace learns what
   * the work fetched: as its own (`miss`) when it started the work, as `joined` when it waited.
   */
  private once<T>(
    key: string,
    trace: ManifestFetchTrace | undefined,
    work: (own: ManifestFetchTrace) => Promise<T>,
  ): Promise<T> {
    const flight = this.flights.run(key, async () => {
      const own = new ManifestFetchTrace();
      return { value: await work(own), trace: own };
    });
    return flight.result.then(({ value, trace: shared }) => {
      if (flight.joined) trace?.joined(shared);
      else trace?.absorb(shared);
      return value as T;
    });
  }
}
