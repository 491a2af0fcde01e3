import { Inject, Injectable, Optional } from '@nestjs/common';
import { createHash } from 'node:crypto';
import { BlobCacheLogger } from './blob-cache-logger.interface';
import { BlobCacheMetrics } from './blob-cache-metrics.interface';
import { BLOB_CACHE_LOGGER, BLOB_CACHE_METRICS } from './blob-cache.options';
import { assertRange, BlobCacheService, BlobLease } from './blob-cache.service';
import { assertCacheableDigest } from './blob-digest.util';
import { BlobFillOperation, OpenUpstreamBlob } from './blob-fill.operation';
import { BlobReadStream } from './blob-read.stream';
import { NoopBlobCacheMetrics } from './noop-blob-cache.metrics';
import {
  BlobOpenOptions,
  BlobOpenResult,
  BlobOpenSource,
  BlobStore,
  IdentityOpenOptions,
} from './blob-store.interface';

export type { BlobOpenOptions, BlobOpenResult, BlobOpenSource } from './blob-store.interface';

/** The key of an identity's fill: digest-shaped (temp file name, pins), never a real content digest. */
function identityKey(identity: string): string {
  return `sha256:${createHash('sha256').update(`identity:${identity}`).digest('hex')}`;
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
export class BlobFillCoordinator implements BlobStore {
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
      return this.start(digest, expectedSize, openUpstream, options);
    }
  }

  private start(
    key: string,
    expectedSize: number | undefined,
    openUpstream: OpenUpstreamBlob,
    options: BlobOpenOptions,
    learn?: (digest: string) => void,
  ): Promise<BlobOpenResult> {
    const context = {
      cache: this.cache,
      logger: this.logger,
      metrics: this.metrics,
      fillTimeoutMs: this.cache.settings.fillTimeoutMs,
      passThroughBufferBytes: this.cache.settings.passThroughBufferBytes,
      detach: (f: BlobFillOperation) => {
        if (this.fills.get(f.digest) === f) this.fills.delete(f.digest);
      },
    };
    const fill = new BlobFillOperation(key, expectedSize, openUpstream, context, learn);
    this.fills.set(key, fill);
    this.fillsStarted++;
    const result = this.read(fill, 'fill-started', options);
    const run = fill.run().finally(() => this.running.delete(run));
    this.running.add(run);
    return result;
  }

  stat(digest: string): number | null {
    return this.cache.stat(digest);
  }

  lease(digest: string, holdMs: number): Promise<BlobLease | null> {
    return this.cache.lease(digest, holdMs);
  }

  async openByIdentity(
    identity: string,
    openUpstream: OpenUpstreamBlob,
    options: IdentityOpenOptions,
  ): Promise<BlobOpenResult | null> {
    const key = identityKey(identity);
    const joinable = this.fills.get(key);
    if (!joinable && options.joinOnly) return null;
    this.metrics.miss();
    if (joinable) {
      this.fillsJoined++;
      return this.read(joinable, 'fill-joined', options);
    }
    return this.start(key, undefined, openUpstream, options, options.learnt);
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
