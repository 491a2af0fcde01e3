import { Inject, Injectable, OnApplicationShutdown, OnModuleInit, Optional } from '@nestjs/common';
import { createHash, randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { BlobCacheException } from './blob-cache.exception';
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
import {
  assertCacheableDigest,
  blobShardAndName,
  isBlobFileName,
  isCacheableDigest,
  isShardName,
} from './blob-digest.util';
import { BlobFileHandle, BlobFileSystem } from './blob-file-system.service';
import { BlobIndexRow, BlobIndexStore } from './blob-index-store.interface';
import { BlobLruIndex } from './blob-lru.index';
import { BlobByteSource, BlobReadStream } from './blob-read.stream';
import { NoopBlobCacheMetrics } from './noop-blob-cache.metrics';

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

export interface BlobTempFile {
  path: string;
  handle: BlobFileHandle;
}

/**
 * The committed side of the blob cache: files under `<cacheDir>/sha256/<2 hex>/<64 hex>`, the
 * in-memory index that answers `stat` without touching the disk, range reads of committed blobs,
 * LRU eviction under `maxBytes`, and batched persistence of the index. Fills (upstream fetches) are
 * run by BlobFillCoordinator, which uses the temp-file and commit methods below.
 *
 * A blob with an open reader or a running fill is never evicted. Unlinking a file that a reader has
 * open would be harmless on POSIX, but the rule keeps a hot blob from being fetched twice.
 */
@Injectable()
export class BlobCacheService implements OnModuleInit, OnApplicationShutdown {
  private readonly options: ResolvedBlobCacheOptions;
  private readonly blobsDir: string;
  private readonly tmpDir: string;
  private readonly index = new BlobLruIndex();
  private readonly readers = new Map<string, number>();
  private readonly pins = new Map<string, number>();
  /** Unlinks in progress, so a commit of the same digest waits instead of racing them. */
  private readonly deleting = new Map<string, Promise<void>>();
  private flushChain: Promise<void> = Promise.resolve();
  private flushTimer: NodeJS.Timeout | undefined;
  private evictions = 0;
  private writeFailures = 0;

  constructor(
    @Inject(BLOB_CACHE_OPTIONS) options: BlobCacheOptions,
    @Inject(BLOB_INDEX_STORE) private readonly indexStore: BlobIndexStore,
    @Inject(BLOB_CACHE_LOGGER) private readonly logger: BlobCacheLogger,
    @Optional()
    @Inject(BLOB_CACHE_METRICS)
    private readonly metrics: BlobCacheMetrics = new NoopBlobCacheMetrics(),
    @Optional() private readonly fileSystem: BlobFileSystem = new BlobFileSystem(),
  ) {
    this.options = resolveBlobCacheOptions(options);
    this.blobsDir = join(this.options.cacheDir, 'sha256');
    this.tmpDir = join(this.options.cacheDir, 'tmp');
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
    await this.fileSystem.mkdirp(this.blobsDir);
    await this.fileSystem.mkdirp(this.tmpDir);
    for (const entry of await this.fileSystem.readdir(this.tmpDir)) {
      await this.fileSystem.remove(join(this.tmpDir, entry.name));
    }

    const onDisk = await this.scanBlobFiles();
    const rows = await this.indexStore.loadAll();
    const known = new Map(rows.map((r) => [r.digest, r]));
    const staleRows: string[] = [];
    const merged: BlobIndexRow[] = [];
    const discovered: BlobIndexRow[] = [];
    for (const row of rows) {
      const file = onDisk.get(row.digest);
      if (!file) staleRows.push(row.digest);
      else if (file.size !== row.sizeBytes) {
        // A file whose length disagrees with what was verified at commit time is damaged.
        this.logger.warn(
          { digest: row.digest, expected: row.sizeBytes, actual: file.size },
          'cached blob has the wrong size; removing it',
        );
        await this.fileSystem.remove(this.blobPath(row.digest));
        onDisk.delete(row.digest);
        staleRows.push(row.digest);
      } else merged.push(row);
    }
    for (const [digest, file] of onDisk) {
      if (known.has(digest)) continue;
      discovered.push({
        digest,
        sizeBytes: file.size,
        createdAt: file.mtime,
        lastAccessedAt: file.mtime,
        hitCount: 0,
      });
    }
    for (const row of [...merged, ...discovered].sort(
      (a, b) => a.lastAccessedAt.getTime() - b.lastAccessedAt.getTime(),
    )) {
      this.index.add(row, false);
    }
    for (let i = 0; i < staleRows.length; i += this.options.flushBatchSize) {
      await this.indexStore.delete(staleRows.slice(i, i + this.options.flushBatchSize));
    }
    for (let i = 0; i < discovered.length; i += this.options.flushBatchSize) {
      await this.indexStore.saveAdded(discovered.slice(i, i + this.options.flushBatchSize));
    }

    if (this.options.flushIntervalMs > 0 && !this.flushTimer) {
      this.flushTimer = setInterval(() => {
        this.flush().catch(() => undefined);
      }, this.options.flushIntervalMs);
      this.flushTimer.unref();
    }
    await this.evictOverCap();
  }

  /** Stops the periodic flush and writes what is still dirty. */
  async close(): Promise<void> {
    if (this.flushTimer) clearInterval(this.flushTimer);
    this.flushTimer = undefined;
    await this.flush().catch(() => undefined);
  }

  /** Size of a committed blob, or null. In memory only; safe to call per request. */
  stat(digest: string): number | null {
    if (!isCacheableDigest(digest)) return null;
    return this.index.get(digest)?.sizeBytes ?? null;
  }

  has(digest: string): boolean {
    return this.stat(digest) !== null;
  }

  /**
   * Opens a committed blob, whole or `[start, endInclusive]`. Resolves null when it is not cached
   * (or its file vanished). Counts as a hit.
   */
  async openRange(digest: string, start = 0, endInclusive?: number): Promise<BlobReadStream | null> {
    assertCacheableDigest(digest);
    const entry = this.index.get(digest);
    if (!entry) return null;
    const end = endInclusive ?? entry.sizeBytes - 1;
    assertRange(start, end, entry.sizeBytes);

    this.acquireReader(digest);
    let handle: BlobFileHandle;
    try {
      handle = await this.fileSystem.openForRead(this.blobPath(digest));
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
    return new BlobReadStream(source, start, end + 1, this.options.readChunkBytes);
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
      handle = await this.fileSystem.openForRead(this.blobPath(digest));
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
    await this.deleteBlobFile(digest);
    return { digest, status: 'corrupt', actualDigest, actualSizeBytes: size };
  }

  /** Writes dirty index entries to the store in batches. Rejects (after keeping them dirty) on failure. */
  flush(): Promise<void> {
    const run = this.flushChain.then(() => this.flushOnce());
    this.flushChain = run.catch(() => undefined);
    return run;
  }

  stats(): BlobCacheStats {
    return {
      blobs: this.index.count,
      bytes: this.index.totalBytes,
      maxBytes: this.options.maxBytes,
      evictions: this.evictions,
      writeFailures: this.writeFailures,
    };
  }

  /** Blobs currently being read from disk (hits and fills), for tests and diagnostics. */
  activeReaders(digest: string): number {
    return this.readers.get(digest) ?? 0;
  }

  // ---- used by BlobFillCoordinator ----

  async createTempFile(digest: string): Promise<BlobTempFile> {
    const path = join(this.tmpDir, `${blobShardAndName(digest).name.slice(0, 16)}-${randomUUID()}.partial`);
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
    const { shard } = blobShardAndName(digest);
    await this.deleting.get(digest);
    await this.fileSystem.mkdirp(join(this.blobsDir, shard));
    await this.fileSystem.rename(tempPath, this.blobPath(digest));
    const now = this.options.now();
    this.index.add({ digest, sizeBytes, createdAt: now, lastAccessedAt: now, hitCount: 0 });
    await this.evictOverCap();
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

  // ---- internals ----

  private blobPath(digest: string): string {
    const { shard, name } = blobShardAndName(digest);
    return join(this.blobsDir, shard, name);
  }

  private async scanBlobFiles(): Promise<Map<string, { size: number; mtime: Date }>> {
    const found = new Map<string, { size: number; mtime: Date }>();
    for (const shard of await this.fileSystem.readdir(this.blobsDir)) {
      const shardPath = join(this.blobsDir, shard.name);
      if (!shard.isDirectory || !isShardName(shard.name)) {
        this.logger.warn({ path: shardPath }, 'removing an unexpected entry from the blob cache');
        await this.fileSystem.remove(shardPath);
        continue;
      }
      for (const file of await this.fileSystem.readdir(shardPath)) {
        const filePath = join(shardPath, file.name);
        if (!file.isFile || !isBlobFileName(file.name) || !file.name.startsWith(shard.name)) {
          this.logger.warn({ path: filePath }, 'removing an unexpected entry from the blob cache');
          await this.fileSystem.remove(filePath);
          continue;
        }
        const stat = await this.fileSystem.stat(filePath);
        found.set(`sha256:${file.name}`, { size: stat.size, mtime: stat.mtime });
      }
    }
    return found;
  }

  private isBusy(digest: string): boolean {
    return (this.readers.get(digest) ?? 0) > 0 || (this.pins.get(digest) ?? 0) > 0;
  }

  /**
   * Picks and unindexes victims synchronously (so a concurrent open either sees a blob with its
   * file or does not see it at all), then unlinks them.
   */
  private async evictOverCap(): Promise<void> {
    const cap = this.options.maxBytes;
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
    this.evictions += victims.length;
    this.metrics.evicted(victims.length, bytes);
    await Promise.all(victims.map((v) => this.deleteBlobFile(v.digest)));
  }

  private deleteBlobFile(digest: string): Promise<void> {
    const run = this.fileSystem.remove(this.blobPath(digest)).catch((error: unknown) => {
      this.logger.error({ digest, err: error }, 'could not delete a cached blob file');
    });
    const tracked = run.finally(() => {
      if (this.deleting.get(digest) === tracked) this.deleting.delete(digest);
    });
    this.deleting.set(digest, tracked);
    return tracked;
  }

  private async flushOnce(): Promise<void> {
    const dirty = this.index.takeDirty();
    if (dirty.added.length + dirty.touched.length + dirty.deleted.length === 0) return;
    const size = this.options.flushBatchSize;
    try {
      for (let i = 0; i < dirty.added.length; i += size)
        await this.indexStore.saveAdded(dirty.added.slice(i, i + size));
      for (let i = 0; i < dirty.touched.length; i += size) {
        await this.indexStore.saveTouched(dirty.touched.slice(i, i + size));
      }
      for (let i = 0; i < dirty.deleted.length; i += size)
        await this.indexStore.delete(dirty.deleted.slice(i, i + size));
    } catch (error) {
      this.index.restoreDirty(dirty);
      this.logger.warn({ err: error }, 'could not save the blob cache index; will retry');
      throw error;
    }
  }
}

class CommittedFileSource implements BlobByteSource {
  private inFlight: Promise<unknown> = Promise.resolve();
  private released = false;

  constructor(
    private readonly digest: string,
    private readonly handle: BlobFileHandle,
    private readonly metrics: BlobCacheMetrics,
    private readonly onRelease: () => void,
  ) {}

  async next(position: number, maxLength: number, endExclusive: number): Promise<Buffer | null> {
    if (position >= endExclusive) return null;
    const buffer = Buffer.allocUnsafe(Math.min(maxLength, endExclusive - position));
    const read = this.handle.read(buffer, 0, buffer.length, position);
    this.inFlight = read.catch(() => undefined);
    const n = await read;
    if (n === 0) throw new BlobCacheException('CACHE_READ_FAILED', `${this.digest} is shorter than indexed`);
    this.metrics.bytesFromCache(n);
    return buffer.subarray(0, n);
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    this.onRelease();
    void this.inFlight.then(() => this.handle.close()).catch(() => undefined);
  }
}

export function assertRange(start: number, endInclusive: number, size: number): void {
  const wholeEmptyBlob = size === 0 && start === 0 && endInclusive === -1;
  const valid =
    Number.isSafeInteger(start) &&
    Number.isSafeInteger(endInclusive) &&
    start >= 0 &&
    start <= endInclusive &&
    endInclusive < size;
  if (!valid && !wholeEmptyBlob) {
    throw new BlobCacheException('RANGE_NOT_SATISFIABLE', `bytes ${start}-${endInclusive} of ${size}`);
  }
}

export function errorCode(error: unknown): string | undefined {
  return typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string'
    ? error.code
    : undefined;
}

function decrement(map: Map<string, number>, key: string): void {
  const n = (map.get(key) ?? 0) - 1;
  if (n > 0) map.set(key, n);
  else map.delete(key);
}
