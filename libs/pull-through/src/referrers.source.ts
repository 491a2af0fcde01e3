import { BoundedCache } from '@gatehouse/bounded-cache';
import { Clock } from '@gatehouse/observability';
import {
  ARTIFACT_SUFFIXES,
  artifactTagOf,
  isIndexMediaType,
  manifestSubject,
  ReferrerDescriptor,
  referrerDescriptor,
  referrerDescriptorsOfIndex,
} from '@gatehouse/oci';
import { ManifestFetchTrace } from './manifest-fetch.trace';
import { PullThroughService } from './pull-through.service';
import { UpstreamSource } from './upstream-source.interface';

export interface ReferrersOptions {
  /** The tag TTL: a subject's referrers are re-read after it, as tags are. */
  tagTtlMs: number;
  /** How long past its check a list may still be served while upstream fails. */
  tagStaleMaxMs: number;
  maxEntries: number;
}

/** Where a referrers list came from (for the audit row). */
export type ReferrersOrigin = 'upstream_api' | 'tag_schema_index' | 'artifact_tags' | 'none';

export interface ReferrersList {
  manifests: ReferrerDescriptor[];
  origin: ReferrersOrigin;
  /** Set when upstream failed and the last known list is served. */
  stale?: { ageSeconds: number };
}

/**
 * The referrers of a subject digest, for the gateway's referrers API (OCI distribution-spec 1.1),
 * in this order of preference: the upstream's referrers API when it has one; else the tag-schema
 * index at `sha256-<hex>`; else one descriptor per manifest at the cosign-style tags
 * `sha256-<hex>.sig`, `.att`, `.sbom` (those without a `subject` field count, as cosign's tag
 * scheme writes none; one naming another subject does not). Answers are kept for the tag TTL (and served stale for the
 * tag stale bound while upstream fails), exactly as tags are.
 *
 * The caller must have established that the subject is reachable for the member: this class asks
 * upstream about the subject's artifact tags.
 */
export class ReferrersSource {
  private readonly lists: BoundedCache<string, ReferrersList>;
  /**
   * Repositories whose upstream answered "no referrers API" (Forgejo's empty 404): for the tag
   * TTL the fallback listing of any subject there does not ask the API again.
   */
  private readonly noApi: BoundedCache<string, true>;

  constructor(
    private readonly pull: PullThroughService,
    private readonly upstream: UpstreamSource,
    clock: Clock,
    options: ReferrersOptions,
  ) {
    const now = () => clock.now();
    this.lists = new BoundedCache({
      max: options.maxEntries,
      ttlMs: options.tagTtlMs,
      staleIfErrorMs: options.tagStaleMaxMs,
      now,
    });
    this.noApi = new BoundedCache({ max: options.maxEntries, ttlMs: options.tagTtlMs, now });
  }

  async list(name: string, subject: string, trace: ManifestFetchTrace): Promise<ReferrersList> {
    const answer = await this.lists.fetch(`${name}\u0000${subject}`, () => this.read(name, subject, trace));
    if (!answer.stale) return answer.value;
    return { ...answer.value, stale: { ageSeconds: Math.round(answer.stale.ageMs / 1000) } };
  }

  private async read(name: string, subject: string, trace: ManifestFetchTrace): Promise<ReferrersList> {
    const fromApi = await this.fromApi(name, subject);
    if (fromApi) return { manifests: referrerDescriptorsOfIndex(fromApi), origin: 'upstream_api' };
    const indexTag = artifactTagOf(subject);
    // The tag schema names sha256 subjects only.
    if (!indexTag) return { manifests: [], origin: 'none' };
    const index = await this.manifestAt(name, indexTag, trace);
    if (index && isIndexMediaType(index.mediaType)) {
      return { manifests: referrerDescriptorsOfIndex(index.body), origin: 'tag_schema_index' };
    }
    const manifests: ReferrerDescriptor[] = [];
    for (const suffix of ARTIFACT_SUFFIXES) {
      const m = await this.manifestAt(name, artifactTagOf(subject, suffix)!, trace);
      // A manifest that names another subject is not this digest's referrer, whatever its tag.
      const names = m ? manifestSubject(m.body) : null;
      if (m && (names === null || names === subject)) manifests.push(referrerDescriptor(m));
    }
    return { manifests, origin: manifests.length > 0 ? 'artifact_tags' : 'none' };
  }

  private async fromApi(name: string, subject: string): Promise<Buffer | null> {
    if (!this.upstream.listReferrers) return null;
    if (this.noApi.get(name)) return null;
    const index = await this.upstream.listReferrers(name, subject);
    if (index) {
      this.noApi.delete(name);
      return index;
    }
    this.noApi.set(name, true);
    return null;
  }

  private async manifestAt(name: string, tag: string, trace: ManifestFetchTrace) {
    const resolved = await this.pull.resolveTag(name, tag, trace);
    return resolved ? this.pull.getManifest(name, resolved.digest, trace) : null;
  }
}
