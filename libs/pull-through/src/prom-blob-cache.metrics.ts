import type { BlobCacheMetrics } from '@gatehouse/blob-cache';
import { MetricsService } from '@gatehouse/observability';

/** The blob cache's counters as Prometheus metrics. */
export class PromBlobCacheMetrics implements BlobCacheMetrics {
  private readonly requests;
  private readonly bytes;
  private readonly fills;
  private readonly evictions;
  private readonly evictedBytes;
  private readonly writeFailures;

  constructor(metrics: MetricsService) {
    this.requests = metrics.counter('gatehouse_blob_cache_requests_total', 'Blob requests by cache result', [
      'result',
    ]);
    this.bytes = metrics.counter('gatehouse_blob_bytes_served_total', 'Blob bytes served, by origin', [
      'source',
    ]);
    this.fills = metrics.gauge(
      'gatehouse_blob_cache_fills_in_flight',
      'Upstream blob fetches filling the cache now',
    );
    this.evictions = metrics.counter('gatehouse_blob_cache_evictions_total', 'Blobs evicted by the size cap');
    this.evictedBytes = metrics.counter(
      'gatehouse_blob_cache_evicted_bytes_total',
      'Bytes evicted by the size cap',
    );
    this.writeFailures = metrics.counter(
      'gatehouse_blob_cache_write_failures_total',
      'Cache fills that could not write to disk (clients were served from upstream)',
    );
  }

  hit(): void {
    this.requests.inc({ result: 'hit' });
  }
  miss(): void {
    this.requests.inc({ result: 'miss' });
  }
  bytesFromCache(bytes: number): void {
    this.bytes.inc({ source: 'cache' }, bytes);
  }
  bytesFromUpstream(bytes: number): void {
    this.bytes.inc({ source: 'upstream' }, bytes);
  }
  fillStarted(): void {
    this.fills.inc();
  }
  fillEnded(): void {
    this.fills.dec();
  }
  evicted(blobs: number, bytes: number): void {
    this.evictions.inc(blobs);
    this.evictedBytes.inc(bytes);
  }
  writeFailed(): void {
    this.writeFailures.inc();
  }
}
