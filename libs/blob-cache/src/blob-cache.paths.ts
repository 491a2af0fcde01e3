import { join, posix } from 'node:path';
import { blobShardAndName } from './blob-digest.util';

/** Where the cache keeps things: `<cacheDir>/sha256/<2 hex>/<64 hex>` and `<cacheDir>/tmp`. */
export class BlobCachePaths {
  readonly blobsDir: string;
  readonly tmpDir: string;

  constructor(cacheDir: string) {
    this.blobsDir = join(cacheDir, 'sha256');
    this.tmpDir = join(cacheDir, 'tmp');
  }

  shardDir(digest: string): string {
    return join(this.blobsDir, blobShardAndName(digest).shard);
  }

  /** `sha256/<2 hex>/<64 hex>`: a committed blob's path under the cache dir, '/'-separated. */
  relativeBlob(digest: string): string {
    const { shard, name } = blobShardAndName(digest);
    return posix.join('sha256', shard, name);
  }

  blob(digest: string): string {
    const { shard, name } = blobShardAndName(digest);
    return join(this.blobsDir, shard, name);
  }
}
