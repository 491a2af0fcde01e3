import { Inject, Injectable, OnApplicationShutdown, OnModuleInit, Optional } from '@nestjs/common';
import { createHash, randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { BlobCacheException } from './blob-cache.exception';
import { BlobCacheEvictor } from './blob-cache.evictor';
import { BlobCachePaths } from './blob-cache.paths';
import { assertRange, errorCode } from './blob-cache.util';
import { BlobCacheLogger } from './blob-cache-logger.interface';
import { BlobCacheMetrics } from './blob-cache-metrics.interface';
import {
  BLOB_CACHE_LOGGER,
  BLOB_CACHE_METRICS,
  BLOB_CACHE_OPTIONS,
  BLOB_INDEX_STORE,
  BlobCacheOptions,
  ResolvedBlobCacheOptions,
  resolveBlobCacheOptions,
} from './blob-cache.options';
import { assertCacheableDigest, blobShardAndName } from './blob-digest.util';
import { BlobFileHandle, BlobFileSystem } from './blob-file-system.service';
import { BlobHasher, createBlobHasher } from './blob-hasher';
import { BlobIndexStore } from './blob-index-store.interface';
import { BlobIndexFlusher } from './blob-index.flusher';
import { BlobIndexReconciler } from './blob-index.reconciler';
import { BlobLruIndex } from './blob-lru.index';
import { CommittedBlobStream } from './committed-blob.stream';
import { CommittedFileSource } from './committed-file.source';
import { NoopBlobCacheMetrics } from './noop-blob-cache.metrics';

export { assertRange, errorCode } from './blob-cache.util';

export interface BlobCacheStats {
  blobs: number;
  bytes: number;
  maxBytes: number;
  evictions: number;
  writeFailures: number;
}

export interface BlobVerifyResult {
  digest: string;
  status: 'ok' | 'missing' | 'corrupt';
  /** For `corrupt`: what the file actually holds. The file has been removed. */
  actualDigest?: string;
  actualSizeBytes?: number;
}

/** A committed blob handed to another reader (a front proxy), see BlobCacheService.lease. */
export interface BlobLease {
  /** `sha256/<2 hex>/<64 hex>`, relative to the cache dir. */
  relativePath: string;
  sizeBytes: number;
}

export interface BlobTempFile {
  path: string;
  handle: BlobFileHandle;
}

/**
 * The committed side of the blob cache: files under `<cacheDir>/sha256/<2 hex>/<64 hex>`, the
 * in-memory index that answers `stat` without touching the disk, range reads of committed blobs,
 * LRU eviction under `maxBytes` (BlobCacheEvictor), and batched persistence of the index
 * (BlobIndexFlusher; BlobIndexReconciler at start). Fills (upstream fetches) are run by
 * BlobFillCoordinator, which uses the temp-file and commit methods below.
 *
 * A blob with an open reader or a running fill is never evicted. Unlinking a file that a reader has
 * open would be harmless on POSIX, but the rule keeps a hot blob from being fetched twice.
 */
@Injectable()
export class BlobCacheService implements OnModuleInit, OnApplicationShutdown {
  private readonly options: ResolvedBlobCacheOptions;
  private readonly paths: BlobCachePaths;
  private readonly index = new BlobLruIndex();
  private readonly evictor: BlobCacheEvictor;
  private readonly flusher: BlobIndexFlusher;
  private readonly reconciler: BlobIndexReconciler;
  private writeFailures = 0;
  /** Hashes what fills (and the download store) write to temp files. */
  readonly hasher: BlobHasher;

  constructor(
    @Inject(BLOB_CACHE_OPTIONS) options: BlobCacheOptions,
    @Inject(BLOB_INDEX_STORE) indexStore: BlobIndexStore,
    @Inject(BLOB_CACHE_LOGGER) private readonly logger: BlobCacheLogger,
    @Optional()
    @Inject(BLOB_CACHE_METRICS)
    private readonly metrics: BlobCacheMetrics = new NoopBlobCacheMetrics(),
    @Optional() private readonly fileSystem: BlobFileSystem = new BlobFileSystem(),
    @Optional() hasher?: BlobHasher,
  ) {
    this.options = resolveBlobCacheOptions(options);
    this.hasher = hasher ?? createBlobHasher(this.options.hashThreads);
    this.paths = new BlobCachePaths(this.options.cacheDir);
    this.evictor = new BlobCacheEvictor(
      this.index,
      this.paths,
      fileSystem,
      metrics,
      logger,
      this.options.maxBytes,
    );
    this.flusher = new BlobIndexFlusher(
      this.index,
      indexStore,
      logger,
      this.options.flushBatchSize,
      this.options.flushIntervalMs,
    );
    this.reconciler = new BlobIndexReconciler(
      this.paths,
      fileSystem,
      indexStore,
      logger,
      this.options.flushBatchSize,
    );
  }

  get settings(): ResolvedBlobCacheOptions {
    return this.options;
  }

  async onModuleInit(): Promise<void> {
    await this.init();
  }

  async onApplicationShutdown(): Promise<void> {
    await this.close();
  }

  /**
   * Creates the directories, deletes leftover temp files, indexes the blob files (by name and
   * size, without re-hashing) and reconciles the index store with what is on disk.
   */
  async init(): Promise<void> {
    await this.fileSystem.mkdirp(this.paths.blobsDir);
    await this.fileSystem.mkdirp(this.paths.tmpDir);
    for (const entry of await this.fileSystem.readdir(this.paths.tmpDir)) {
      await this.fileSystem.remove(join(this.paths.tmpDir, entry.name));
    }
    await this.reconciler.reconcile(this.index);
    this.flusher.start();
    await this.evictor.evictOverCap();
  }

  /** Stops the periodic flush and writes what is still dirty. */
  async close(): Promise<void> {
    this.flusher.stop();
    await this.flush().catch(() => undefined);
    await this.hasher.close();
  }

  /**
   * Size of a committed blob, or null. In memory only; safe to call per request. The index only
   * holds digests a fill committed (the fill coordinator refused any other), so any other string
   * is simply not found.
   */
  stat(digest: string): number | null {
    return this.index.get(digest)?.sizeBytes ?? null;
  }

  has(digest: string): boolean {
    return this.stat(digest) !== null;
  }

  /**
   * Opens a committed blob, whole or `[start, endInclusive]`. Resolves null when it is not cached
   * (or its file vanished). Counts as a hit. A digest not in the index is null; the file path is
   * built (and the digest checked against path traversal) by BlobCachePaths alone.
   */
  async openRange(digest: string, start = 0, endInclusive?: number): Promise<CommittedBlobStream | null> {
    const entry = this.index.get(digest);
    if (!entry) return null;
    const end = endInclusive ?? entry.sizeBytes - 1;
    assertRange(start, end, entry.sizeBytes);

    this.acquireReader(digest);
    let handle: BlobFileHandle;
    try {
      handle = await this.fileSystem.openForRead(this.paths.blob(digest));
    } catch (error) {
      this.releaseReader(digest);
      if (errorCode(error) !== 'ENOENT')
        throw new BlobCacheException('CACHE_READ_FAILED', `open ${digest}`, error);
      this.logger.warn({ digest }, 'cached blob file disappeared; dropping it from the index');
      this.index.remove(digest);
      return null;
    }
    this.index.touch(digest, this.options.now());
    this.metrics.hit();
    const source = new CommittedFileSource(digest, handle, this.metrics, () => this.releaseReader(digest));
    return new CommittedBlobStream(source, start, end + 1, this.options.readChunkBytes);
  }

  /**
   * Hands a committed blob to a reader outside this process (nginx, X-Accel-Redirect): resolves
   * its path relative to the cache dir, or null when it is not cached (or its file vanished, which
   * drops it from the index as openRange does). Counts as a hit and touches the LRU like a read,
   * and keeps the blob from eviction for `holdMs`, so the file cannot be unlinked between the
   * answer and the other reader opening it (once open, an unlink no longer matters).
   */
  async lease(digest: string, holdMs: number): Promise<BlobLease | null> {
    const entry = this.index.get(digest);
    if (!entry) return null;
    // Pinned before the await: an eviction running meanwhile must not pick it.
    this.evictor.pin(digest);
    let present: boolean;
    try {
      present = (await this.fileSystem.stat(this.paths.blob(digest))).isFile;
    } catch (error) {
      if (errorCode(error) !== 'ENOENT') {
        this.evictor.unpin(digest);
        throw new BlobCacheException('CACHE_READ_FAILED', `stat ${digest}`, error);
      }
      present = false;
    }
    if (!present) {
      this.evictor.unpin(digest);
      this.logger.warn({ digest }, 'cached blob file disappeared; dropping it from the index');
      this.index.remove(digest);
      return null;
    }
    setTimeout(() => this.evictor.unpin(digest), holdMs).unref();
    this.index.touch(digest, this.options.now());
    this.metrics.hit();
    return { relativePath: this.paths.relativeBlob(digest), sizeBytes: entry.sizeBytes };
  }

  /**
   * Re-hashes a committed blob. A blob whose content does not match its name is removed from the
   * disk and the index. Slow (reads the whole file): meant for an operator command.
   */
  async verify(digest: string): Promise<BlobVerifyResult> {
    assertCacheableDigest(digest);
    if (!this.index.get(digest)) return { digest, status: 'missing' };
    let handle: BlobFileHandle;
    try {
      handle = await this.fileSystem.openForRead(this.paths.blob(digest));
    } catch (error) {
      if (errorCode(error) !== 'ENOENT') throw error;
      this.index.remove(digest);
      return { digest, status: 'missing' };
    }
    const hash = createHash('sha256');
    let size = 0;
    try {
      const buffer = Buffer.allocUnsafe(1024 * 1024);
      for (;;) {
        const n = await handle.read(buffer, 0, buffer.length, size);
        if (n === 0) break;
        hash.update(buffer.subarray(0, n));
        size += n;
      }
    } finally {
      await handle.close();
    }
    const actualDigest = `sha256:${hash.digest('hex')}`;
    const expectedSize = this.index.get(digest)?.sizeBytes;
    if (actualDigest === digest && size === expectedSize) return { digest, status: 'ok' };
    this.logger.error({ digest, actualDigest, actualSizeBytes: size }, 'cached blob is corrupt; removing it');
    this.index.remove(digest);
    await this.evictor.deleteBlobFile(digest);
    return { digest, status: 'corrupt', actualDigest, actualSizeBytes: size };
  }

  /** Writes dirty index entries to the store in batches. Rejects (after keeping them dirty) on failure. */
  flush(): Promise<void> {
    return this.flusher.flush();
  }

  stats(): BlobCacheStats {
    return {
      blobs: this.index.count,
      bytes: this.index.totalBytes,
      maxBytes: this.options.maxBytes,
      evictions: this.evictor.evictions,
      writeFailures: this.writeFailures,
    };
  }

  /** Blobs currently being read from disk (hits and fills), for tests and diagnostics. */
  activeReaders(digest: string): number {
    return this.evictor.activeReaders(digest);
  }

  // ---- used by BlobFillCoordinator ----

  async createTempFile(digest: string): Promise<BlobTempFile> {
    const path = join(
      this.paths.tmpDir,
      `${blobShardAndName(digest).name.slice(0, 16)}-${randomUUID()}.partial`,
    );
    return { path, handle: await this.fileSystem.createExclusive(path) };
  }

  async discardTempFile(path: string): Promise<void> {
    try {
      await this.fileSystem.unlink(path);
    } catch (error) {
      if (errorCode(error) !== 'ENOENT')
        this.logger.warn({ path, err: error }, 'could not delete a blob cache temp file');
    }
  }

  /** Makes a verified temp file visible under its digest, then evicts down to the cap. */
  async commitTempFile(tempPath: string, digest: string, sizeBytes: number): Promise<void> {
    await this.evictor.deleted(digest);
    await this.fileSystem.mkdirp(this.paths.shardDir(digest));
    await this.fileSystem.rename(tempPath, this.paths.blob(digest));
    const now = this.options.now();
    this.index.add({ digest, sizeBytes, createdAt: now, lastAccessedAt: now, hitCount: 0 });
    await this.evictor.evictOverCap();
  }

  recordWriteFailure(digest: string, error: unknown): void {
    this.writeFailures++;
    this.metrics.writeFailed();
    this.logger.warn(
      { digest, code: errorCode(error), err: error, cacheDir: this.options.cacheDir },
      'blob cache write failed; serving the blob from upstream without caching it',
    );
  }

  pin(digest: string): void {
    this.evictor.pin(digest);
  }

  unpin(digest: string): void {
    this.evictor.unpin(digest);
  }

  acquireReader(digest: string): void {
    this.evictor.acquireReader(digest);
  }

  releaseReader(digest: string): void {
    this.evictor.releaseReader(digest);
  }
}
