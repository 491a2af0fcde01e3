import { join } from 'node:path';
import { BlobCacheLogger } from './blob-cache-logger.interface';
import { BlobCachePaths } from './blob-cache.paths';
import { isBlobFileName, isShardName } from './blob-digest.util';
import { BlobFileSystem } from './blob-file-system.service';
import { BlobIndexRow, BlobIndexStore } from './blob-index-store.interface';
import { BlobLruIndex } from './blob-lru.index';

/**
 * At start: indexes the blob files on disk (by name and size, without re-hashing), removes what
 * does not belong there, and reconciles the index store with the disk (rows without a file or
 * with the wrong size are dropped; files without a row are added).
 */
export class BlobIndexReconciler {
  constructor(
    private readonly paths: BlobCachePaths,
    private readonly fileSystem: BlobFileSystem,
    private readonly store: BlobIndexStore,
    private readonly logger: BlobCacheLogger,
    private readonly batchSize: number,
  ) {}

  async reconcile(index: BlobLruIndex): Promise<void> {
    const onDisk = await this.scanBlobFiles();
    const rows = await this.store.loadAll();
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
        await this.fileSystem.remove(this.paths.blob(row.digest));
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
      index.add(row, false);
    }
    for (let i = 0; i < staleRows.length; i += this.batchSize) {
      await this.store.delete(staleRows.slice(i, i + this.batchSize));
    }
    for (let i = 0; i < discovered.length; i += this.batchSize) {
      await this.store.saveAdded(discovered.slice(i, i + this.batchSize));
    }
  }

  private async scanBlobFiles(): Promise<Map<string, { size: number; mtime: Date }>> {
    const blobsDir = this.paths.blobsDir;
    const found = new Map<string, { size: number; mtime: Date }>();
    for (const shard of await this.fileSystem.readdir(blobsDir)) {
      const shardPath = join(blobsDir, shard.name);
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
}
