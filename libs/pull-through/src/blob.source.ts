import type { Readable } from 'node:stream';
import { BlobOpenSource, BlobStore, isCacheableDigest, parseRangeHeader } from '@gatehouse/blob-cache';
import { Digest, OciError } from '@gatehouse/oci';
import { UpstreamSource } from './upstream-source.interface';

/**
 * How a blob request was served: from a committed cache file, by a fill it started, by a fill
 * already running, or straight from upstream (digests the cache does not store).
 */
export type BlobCacheResult = 'hit' | 'miss' | 'joined' | 'bypass';

export interface BlobRequest {
  /** The size the manifest descriptor declares, when known: a fill refuses any other. */
  declaredSize?: number;
  /** The client's `Range` header, as sent. */
  range?: string;
  /** Aborted when the client goes away (the fill itself runs on its own). */
  signal: AbortSignal;
  /**
   * Hand a committed file to a front proxy instead of reading it (X-Accel-Redirect): a hit is
   * answered with `file` and no body. Misses, joins and uncacheable digests stream as usual.
   */
  offload?: boolean;
}

/** How long a blob handed to the front proxy is kept from eviction: it opens the file within ms. */
export const OFFLOAD_HOLD_MS = 30_000;

/** A blob ready to be written to the client. */
export interface BlobReply {
  source: BlobCacheResult;
  /** Size of the whole blob, when known. */
  size: number | undefined;
  /** Bytes `body` holds (the range, or the whole blob), when known. */
  length: number | undefined;
  /** `bytes a-b/total` when a range is served. */
  contentRange?: string;
  /** Absent for HEAD. Ends only after the content was verified; otherwise it is destroyed. */
  body?: Readable;
  /** Offloaded hit: the committed file, relative to the cache dir (`sha256/<2>/<64>`); no body. */
  file?: string;
}

const FROM_FILL: Record<BlobOpenSource, BlobCacheResult> = {
  hit: 'hit',
  'fill-started': 'miss',
  'fill-joined': 'joined',
};

/**
 * Serves blobs, a decorator over the blob cache: a committed file first, otherwise the one fill
 * of that digest (started here or joined: single-flight lives in the cache's fill coordinator),
 * which streams upstream bytes to every waiting client while it verifies and commits them.
 * Digests the cache does not store (sha512) are streamed from upstream, still verified.
 *
 * The caller must have established that the digest is reachable from an admitted tag: this
 * class asks upstream about any digest it is given.
 */
export class BlobSource {
  constructor(
    private readonly store: BlobStore,
    private readonly upstream: UpstreamSource,
  ) {}

  async head(name: string, digest: Digest, request: Omit<BlobRequest, 'range'>): Promise<BlobReply> {
    const cacheable = isCacheableDigest(digest);
    const cached = cacheable ? this.store.stat(digest) : null;
    if (cached !== null) return { source: 'hit', size: cached, length: cached };
    const head = await this.upstream.headBlob(name, digest, request.signal);
    if (!head) throw new OciError('BLOB_UNKNOWN', { reason: 'blob_unknown_upstream' });
    const size = head.size >= 0 ? head.size : request.declaredSize;
    return { source: cacheable ? 'miss' : 'bypass', size, length: size };
  }

  async open(name: string, digest: Digest, request: BlobRequest): Promise<BlobReply> {
    const { declaredSize } = request;
    const cacheable = isCacheableDigest(digest);
    const knownSize = (cacheable ? this.store.stat(digest) : null) ?? declaredSize;
    const range = knownSize === undefined ? undefined : this.range(request.range, knownSize);
    if (!cacheable) return this.passThrough(name, digest, range, request.signal);
    if (request.offload) {
      const lease = await this.store.lease(digest, OFFLOAD_HOLD_MS);
      // The range was judged against the size the index holds, which is the lease's.
      if (lease) return { ...rangeReply('hit', lease.sizeBytes, range), file: lease.relativePath };
    }

    const opened = await this.store.open(
      digest,
      declaredSize,
      async (signal) => {
        // The fill hashes every byte and commits or releases the last one only on a match, so
        // the upstream client need not hash the same bytes a second time.
        const b = await this.upstream.getBlob(name, digest, {
          expectedSize: declaredSize,
          signal,
          verifyDigest: false,
        });
        if (!b) throw new OciError('BLOB_UNKNOWN', { reason: 'blob_unknown_upstream' });
        return { ...b, status: 200, size: b.size ?? declaredSize ?? -1 };
      },
      range ? { range } : {},
    );
    return { ...rangeReply(FROM_FILL[opened.source], opened.size, range), body: opened.body };
  }

  /** Resolves once every fill running now has committed or failed (shutdown, tests). */
  whenIdle(): Promise<void> {
    return this.store.whenIdle();
  }

  /** The range to serve, undefined for the whole blob; 416 for one that selects no byte. */
  private range(header: string | undefined, size: number): { start: number; end: number } | undefined {
    const parsed = parseRangeHeader(header, size);
    if (parsed.kind === 'unsatisfiable') {
      throw new OciError('RANGE_INVALID', {
        headers: { 'Content-Range': `bytes */${size}` },
        reason: 'range_unsatisfiable',
      });
    }
    return parsed.kind === 'range' ? { start: parsed.start, end: parsed.end } : undefined;
  }

  private async passThrough(
    name: string,
    digest: Digest,
    range: { start: number; end: number } | undefined,
    signal: AbortSignal,
  ): Promise<BlobReply> {
    const b = await this.upstream.getBlob(name, digest, { range, signal });
    if (!b) throw new OciError('BLOB_UNKNOWN', { reason: 'blob_unknown_upstream' });
    if (b.status === 206) {
      const contentRange = b.contentRange ?? `bytes ${range?.start ?? 0}-${range?.end ?? ''}/*`;
      const total = /\/(\d+)$/.exec(contentRange)?.[1];
      return {
        source: 'bypass',
        size: total === undefined ? undefined : Number(total),
        length: b.size,
        contentRange,
        body: b.body,
      };
    }
    return { source: 'bypass', size: b.size, length: b.size, body: b.body };
  }
}

/** Size, length and Content-Range of a reply serving `range` (or the whole blob) of `size` bytes. */
function rangeReply(
  source: BlobCacheResult,
  size: number,
  range: { start: number; end: number } | undefined,
): BlobReply {
  if (!range) return { source, size, length: size };
  return {
    source,
    size,
    length: range.end - range.start + 1,
    contentRange: `bytes ${range.start}-${range.end}/${size}`,
  };
}
