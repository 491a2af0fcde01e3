import { Readable } from 'node:stream';
import { BlobCacheLogger } from './blob-cache-logger.interface';
import { BlobCacheMetrics } from './blob-cache-metrics.interface';
import type { BlobCacheService } from './blob-cache.service';
import type { BlobFillOperation } from './blob-fill.operation';

export interface UpstreamBlob {
  body: Readable;
  /** Content length announced by upstream. */
  size: number;
}

/** Opens the blob upstream. It must honour the signal: the fill aborts it on timeout. */
export type OpenUpstreamBlob = (signal: AbortSignal) => Promise<UpstreamBlob>;

export interface BlobFillContext {
  cache: BlobCacheService;
  logger: BlobCacheLogger;
  metrics: BlobCacheMetrics;
  fillTimeoutMs: number;
  passThroughBufferBytes: number;
  /** Called once the fill must no longer be joined (degraded, or settled). */
  detach(fill: BlobFillOperation): void;
}
