import { BlobCacheLogger } from './blob-cache-logger.interface';
import { BlobIndexStore } from './blob-index-store.interface';
import { BlobLruIndex } from './blob-lru.index';

/**
 * Batched persistence of the in-memory index: dirty entries are written to the index store on an
 * interval (and on demand), one flush at a time; a failed flush keeps them dirty for the next.
 */
export class BlobIndexFlusher {
  private chain: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly index: BlobLruIndex,
    private readonly store: BlobIndexStore,
    private readonly logger: BlobCacheLogger,
    private readonly batchSize: number,
    private readonly intervalMs: number,
  ) {}

  /** Starts the periodic flush (once; not with an interval of 0). */
  start(): void {
    if (this.intervalMs <= 0 || this.timer) return;
    this.timer = setInterval(() => {
      this.flush().catch(() => undefined);
    }, this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Writes dirty index entries to the store in batches. Rejects (after keeping them dirty) on failure. */
  flush(): Promise<void> {
    const run = this.chain.then(() => this.flushOnce());
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async flushOnce(): Promise<void> {
    const dirty = this.index.takeDirty();
    if (dirty.added.length + dirty.touched.length + dirty.deleted.length === 0) return;
    const size = this.batchSize;
    try {
      for (let i = 0; i < dirty.added.length; i += size)
        await this.store.saveAdded(dirty.added.slice(i, i + size));
      for (let i = 0; i < dirty.touched.length; i += size) {
        await this.store.saveTouched(dirty.touched.slice(i, i + size));
      }
      for (let i = 0; i < dirty.deleted.length; i += size)
        await this.store.delete(dirty.deleted.slice(i, i + size));
    } catch (error) {
      this.index.restoreDirty(dirty);
      this.logger.warn({ err: error }, 'could not save the blob cache index; will retry');
      throw error;
    }
  }
}
