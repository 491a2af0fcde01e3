export const BLOB_CACHE_OPTIONS = Symbol('BLOB_CACHE_OPTIONS');
export const BLOB_INDEX_STORE = Symbol('BLOB_INDEX_STORE');
export const BLOB_CACHE_LOGGER = Symbol('BLOB_CACHE_LOGGER');
export const BLOB_CACHE_METRICS = Symbol('BLOB_CACHE_METRICS');

export interface BlobCacheOptions {
  /** Root directory; blobs live in `sha256/`, fills in `tmp/` (same file system, so rename is atomic). */
  cacheDir: string;
  /** Size cap in bytes; 0 means no cap. */
  maxBytes: number;
  /** A fill (upstream fetch + write + verify) is aborted after this long, whoever is waiting. */
  fillTimeoutMs: number;
  /** How often dirty index entries are written to the BlobIndexStore; 0 = only on flush()/shutdown. Default 30 s. */
  flushIntervalMs?: number;
  /** Rows per BlobIndexStore call. Default 500. */
  flushBatchSize?: number;
  /** Bytes a reader reads per step; also its stream high-water mark. Default 64 KiB. */
  readChunkBytes?: number;
  /**
   * When the disk fails during a fill, how far (in bytes) the upstream may run ahead of the slowest
   * reader before the fill waits for it. Default 8 MiB.
   */
  passThroughBufferBytes?: number;
  /**
   * Worker threads that hash fills by reading their temp file back (BlobHashWorkerPool); 0 hashes
   * on the event loop. Default 1. Ignored when the setup provides its own BlobHasher.
   */
  hashThreads?: number;
  /** Source of time for access statistics. Default: the system clock. */
  now?: () => Date;
}

export type ResolvedBlobCacheOptions = Required<BlobCacheOptions>;

export function resolveBlobCacheOptions(options: BlobCacheOptions): ResolvedBlobCacheOptions {
  return {
    flushIntervalMs: 30_000,
    flushBatchSize: 500,
    readChunkBytes: 64 * 1024,
    passThroughBufferBytes: 8 * 1024 * 1024,
    hashThreads: 1,
    now: () => new Date(),
    ...options,
  };
}
