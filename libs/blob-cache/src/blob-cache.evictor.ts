import { BlobCacheLogger } from './blob-cache-logger.interface';
import { BlobCacheMetrics } from './blob-cache-metrics.interface';
import { BlobCachePaths } from './blob-cache.paths';
import { decrement } from './blob-cache.util';
import { BlobFileSystem } from './blob-file-system.service';
import { BlobIndexRow } from './blob-index-store.interface';
import { BlobLruIndex } from './blob-lru.index';

/**
 * LRU eviction under the byte cap, and the reference counts that keep a blob from being evicted:
 * open readers and running fills (pins). Unlinks in progress are tracked so a commit of the same
 * digest waits for them instead of racing them.
 */
export class BlobCacheEvictor {
  private readonly readers = new Map<string, number>();
  private readonly pins = new Map<string, number>();
  private readonly deleting = new Map<string, Promise<void>>();
  private evictionCount = 0;

  constructor(
    private readonly index: BlobLruIndex,
    private readonly paths: BlobCachePaths,
    private readonly fileSystem: BlobFileSystem,
    private readonly metrics: BlobCacheMetrics,
    private readonly logger: BlobCacheLogger,
    private readonly maxBytes: number,
  ) {}

  get evictions(): number {
    return this.evictionCount;
  }

  pin(digest: string): void {
    this.pins.set(digest, (this.pins.get(digest) ?? 0) + 1);
  }

  unpin(digest: string): void {
    decrement(this.pins, digest);
  }

  acquireReader(digest: string): void {
    this.readers.set(digest, (this.readers.get(digest) ?? 0) + 1);
  }

  releaseReader(digest: string): void {
    decrement(this.readers, digest);
  }

  activeReaders(digest: string): number {
    return this.readers.get(digest) ?? 0;
  }

  /** Resolves once an unlink of `digest` in progress (if any) is done. */
  async deleted(digest: string): Promise<void> {
    await this.deleting.get(digest);
  }

  /**
   * Picks and unindexes victims synchronously (so a concurrent open either sees a blob with its
   * file or does not see it at all), then unlinks them.
   */
  async evictOverCap(): Promise<void> {
    const cap = this.maxBytes;
    if (cap <= 0 || this.index.totalBytes <= cap) return;
    let excess = this.index.totalBytes - cap;
    const victims: BlobIndexRow[] = [];
    for (const entry of this.index.lruOrder()) {
      if (excess <= 0) break;
      if (this.isBusy(entry.digest)) continue;
      victims.push(entry);
      excess -= entry.sizeBytes;
    }
    if (victims.length === 0) return;
    let bytes = 0;
    for (const victim of victims) {
      this.index.remove(victim.digest);
      bytes += victim.sizeBytes;
    }
    this.evictionCount += victims.length;
    this.metrics.evicted(victims.length, bytes);
    await Promise.all(victims.map((v) => this.deleteBlobFile(v.digest)));
  }

  /** Unlinks a blob file (already unindexed), tracked until done. */
  deleteBlobFile(digest: string): Promise<void> {
    const run = this.fileSystem.remove(this.paths.blob(digest)).catch((error: unknown) => {
      this.logger.error({ digest, err: error }, 'could not delete a cached blob file');
    });
    const tracked = run.finally(() => {
      if (this.deleting.get(digest) === tracked) this.deleting.delete(digest);
    });
    this.deleting.set(digest, tracked);
    return tracked;
  }

  private isBusy(digest: string): boolean {
    return (this.readers.get(digest) ?? 0) > 0 || (this.pins.get(digest) ?? 0) > 0;
  }
}
