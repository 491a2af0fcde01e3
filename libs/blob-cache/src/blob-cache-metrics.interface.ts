/** Counters and gauges the cache reports; the gateway backs them with prom-client. */
export interface BlobCacheMetrics {
  /** A request served from a committed file. */
  hit(): void;
  /** A request served by a fill (started or joined). */
  miss(): void;
  bytesFromCache(bytes: number): void;
  bytesFromUpstream(bytes: number): void;
  fillStarted(): void;
  fillEnded(): void;
  evicted(blobs: number, bytes: number): void;
  writeFailed(): void;
}
