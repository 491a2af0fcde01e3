/** One row of the persisted cache index (table `cached_blobs`). */
export interface BlobIndexRow {
  digest: string;
  sizeBytes: number;
  lastAccessedAt: Date;
  hitCount: number;
  createdAt: Date;
}

/**
 * Where the index survives restarts. The cache calls it only from its periodic flush and at start,
 * never per request; every method takes a batch and must be idempotent (a failed flush is retried
 * with the same rows).
 */
export interface BlobIndexStore {
  loadAll(): Promise<BlobIndexRow[]>;
  /** Rows already stored whose access time or hit count changed. Upsert. */
  saveTouched(rows: BlobIndexRow[]): Promise<void>;
  /** Rows for newly committed (or newly discovered) blobs. Upsert. */
  saveAdded(rows: BlobIndexRow[]): Promise<void>;
  delete(digests: string[]): Promise<void>;
}
