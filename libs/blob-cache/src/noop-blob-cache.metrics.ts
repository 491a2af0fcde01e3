import { BlobCacheMetrics } from './blob-cache-metrics.interface';

export class NoopBlobCacheMetrics implements BlobCacheMetrics {
  hit(): void {}
  miss(): void {}
  bytesFromCache(_bytes: number): void {}
  bytesFromUpstream(_bytes: number): void {}
  fillStarted(): void {}
  fillEnded(): void {}
  evicted(_blobs: number, _bytes: number): void {}
  writeFailed(): void {}
}
