import { Inject, Injectable, Optional } from '@nestjs/common';
import { Readable } from 'node:stream';
import { BlobCacheLogger } from './blob-cache-logger.interface';
import { BlobCacheMetrics } from './blob-cache-metrics.interface';
import { BLOB_CACHE_LOGGER, BLOB_CACHE_METRICS } from './blob-cache.options';
import { assertRange, BlobCacheService } from './blob-cache.service';
import { assertCacheableDigest } from './blob-digest.util';
import { BlobFillOperation, OpenUpstreamBlob } from './blob-fill.operation';
import { BlobReadStream } from './blob-read.stream';
import { NoopBlobCacheMetrics } from './noop-blob-cache.metrics';

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

export interface BlobFillStats {
  fillsInFlight: number;
  fillsStarted: number;
  fillsJoined: number;
}

/**
 * Single-flight access to blobs: a hit is read from disk, a miss starts (or joins) the one fill of
 * that digest. The fill runs on its own AbortController and timeout, so it finishes and commits
 * even when every client that asked for it has gone.
 */
@Injectable()
export class BlobFillCoordinator {
  private readonly fills = new Map<string, BlobFillOperation>();
  /** Every fill still running, including degraded ones no longer joinable. */
  private readonly running = new Set<Promise<void>>();
  private fillsStarted = 0;
  private fillsJoined = 0;

  constructor(
    private readonly cache: BlobCacheService,
    @Inject(BLOB_CACHE_LOGGER) private readonly logger: BlobCacheLogger,
    @Optional()
    @Inject(BLOB_CACHE_METRICS)
    private readonly metrics: BlobCacheMetrics = new NoopBlobCacheMetrics(),
  ) {}

  /**
   * Opens `digest` (strict sha256 only; check with isCacheableDigest first). `expectedSize`, when
   * known from a manifest descriptor, makes a fill refuse an upstream announcing another size.
   * Rejects with upstream's own error if the fill could not even start (e.g. upstream 404), with
   * BlobCacheException RANGE_NOT_SATISFIABLE for a range outside the blob.
   */
  async open(
    digest: string,
    expectedSize: number | undefined,
    openUpstream: OpenUpstreamBlob,
    options: BlobOpenOptions = {},
  ): Promise<BlobOpenResult> {
    assertCacheableDigest(digest);
    for (;;) {
      const joinable = this.fills.get(digest);
      const cachedSize = joinable ? null : this.cache.stat(digest);
      if (cachedSize !== null) {
        const body = await this.cache.openRange(
          digest,
          options.range?.start ?? 0,
          options.range?.end ?? cachedSize - 1,
        );
        if (body) return { source: 'hit', size: cachedSize, body };
        continue;
      }
      this.metrics.miss();
      if (joinable) {
        this.fillsJoined++;
        return this.read(joinable, 'fill-joined', options);
      }
      const fill = new BlobFillOperation(digest, expectedSize, openUpstream, {
        cache: this.cache,
        logger: this.logger,
        metrics: this.metrics,
        fillTimeoutMs: this.cache.settings.fillTimeoutMs,
        passThroughBufferBytes: this.cache.settings.passThroughBufferBytes,
        detach: (f) => {
          if (this.fills.get(f.digest) === f) this.fills.delete(f.digest);
        },
      });
      this.fills.set(digest, fill);
      this.fillsStarted++;
      const result = this.read(fill, 'fill-started', options);
      const run = fill.run().finally(() => this.running.delete(run));
      this.running.add(run);
      return result;
    }
  }

  /** Resolves once every fill running now has committed or failed (shutdown, tests). */
  async whenIdle(): Promise<void> {
    while (this.running.size > 0) await Promise.all([...this.running]);
  }

  stats(): BlobFillStats {
    return {
      fillsInFlight: this.running.size,
      fillsStarted: this.fillsStarted,
      fillsJoined: this.fillsJoined,
    };
  }

  private async read(
    fill: BlobFillOperation,
    source: BlobOpenSource,
    options: BlobOpenOptions,
  ): Promise<BlobOpenResult> {
    const start = options.range?.start ?? 0;
    // Claimed before any await, so bytes this reader needs are kept for it from now on.
    const claim = fill.claim(start);
    try {
      const size = await fill.ready;
      const end = options.range?.end ?? size - 1;
      assertRange(start, end, size);
      return {
        source,
        size,
        body: new BlobReadStream(claim, start, end + 1, this.cache.settings.readChunkBytes),
      };
    } catch (error) {
      claim.release();
      throw error;
    }
  }
}
