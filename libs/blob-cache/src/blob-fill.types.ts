import type { UpstreamBlob } from '@gatehouse/oci';
import { BlobCacheLogger } from './blob-cache-logger.interface';
import { BlobCacheMetrics } from './blob-cache-metrics.interface';
import type { BlobCacheService } from './blob-cache.service';
import type { BlobFillOperation } from './blob-fill.operation';

/**
 * Opens the blob upstream: the whole blob, with its length known (the caller falls back to the
 * descriptor's size). It must honour the signal: the fill aborts it on timeout.
 */
export type OpenUpstreamBlob = (signal: AbortSignal) => Promise<UpstreamBlob & { status: 200; size: number }>;

export interface BlobFillContext {
  cache: BlobCacheService;
  logger: BlobCacheLogger;
  metrics: BlobCacheMetrics;
  fillTimeoutMs: number;
  passThroughBufferBytes: number;
  /** Called once the fill must no longer be joined (degraded, or settled). */
  detach(fill: BlobFillOperation): void;
}
