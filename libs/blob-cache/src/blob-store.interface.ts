import type { Readable } from 'node:stream';
import type { BlobLease } from './blob-cache.service';
import type { OpenUpstreamBlob } from './blob-fill.types';

/** How a request was served: from a committed file, by a fill it started, or by a fill already running. */
export type BlobOpenSource = 'hit' | 'fill-started' | 'fill-joined';

export interface BlobOpenOptions {
  /** Serve only bytes `start..end` (inclusive); validated against the blob's size. */
  range?: { start: number; end: number };
}

export interface BlobOpenResult {
  source: BlobOpenSource;
  /** Size of the whole blob. */
  size: number;
  /**
   * The requested bytes. Ends only after the content was verified; on any failure it is destroyed
   * with a BlobCacheException.
   */
  body: Readable;
}

export interface IdentityOpenOptions extends BlobOpenOptions {
  /** Called once with `sha256:<hex>` when the fill verified (and committed) the content. */
  learnt(digest: string): void;
  /** Only join a fill already running for the identity; resolve null when there is none. */
  joinOnly?: boolean;
}

/**
 * The one content store: content-addressed, single-flight, Range, LRU, verify-before-commit
 * (distribution's BlobStore with the proxy decorator folded in). Every reader, the first included,
 * reads at its own pace from the growing file or the fill's memory window; a fill is paced by the
 * upstream and the disk only. BlobFillCoordinator is the implementation; callers depend on this.
 */
export interface BlobStore {
  /** Size of a committed blob, or null (memory only). */
  stat(digest: string): number | null;
  /**
   * Opens `digest` (strict sha256): a hit, or the one fill of that digest, started or joined.
   * `expectedSize` makes a fill refuse an upstream announcing another size.
   */
  open(
    digest: string,
    expectedSize: number | undefined,
    openUpstream: OpenUpstreamBlob,
    options?: BlobOpenOptions,
  ): Promise<BlobOpenResult>;
  /**
   * Opens content known by an identity whose digest is not known yet (a release asset): the one
   * fill of that identity, started or joined, verified by size, committed under the digest it
   * hashes to (handed to `learnt`), after which the caller opens it by digest.
   */
  openByIdentity(
    identity: string,
    openUpstream: OpenUpstreamBlob,
    options: IdentityOpenOptions,
  ): Promise<BlobOpenResult | null>;
  /**
   * Hands a committed blob to a reader outside this process (a front proxy): its path relative to
   * the cache dir, kept from eviction for `holdMs`; null when it is not cached.
   */
  lease(digest: string, holdMs: number): Promise<BlobLease | null>;
  /** Resolves once every fill running now has committed or failed (shutdown, tests). */
  whenIdle(): Promise<void>;
}
