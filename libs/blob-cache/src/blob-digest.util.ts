import { BlobCacheException } from './blob-cache.exception';

const SHA256_DIGEST = /^sha256:[0-9a-f]{64}$/;
const HEX64 = /^[0-9a-f]{64}$/;
const SHARD = /^[0-9a-f]{2}$/;

/**
 * Only strict `sha256:<64 lowercase hex>` digests are cached. Anything else (other algorithms,
 * upper case, separators) is rejected before a path is built, so a digest can never name a file
 * outside the cache directory.
 */
export function isCacheableDigest(digest: string): boolean {
  return SHA256_DIGEST.test(digest);
}

export function assertCacheableDigest(digest: string): void {
  if (!isCacheableDigest(digest)) {
    throw new BlobCacheException(
      'DIGEST_NOT_CACHEABLE',
      `not a sha256 digest: ${JSON.stringify(digest.slice(0, 80))}`,
    );
  }
}

export function isBlobFileName(name: string): boolean {
  return HEX64.test(name);
}

export function isShardName(name: string): boolean {
  return SHARD.test(name);
}

/** The file's location relative to `<cacheDir>/sha256`: `<2 hex>/<64 hex>`. */
export function blobShardAndName(digest: string): { shard: string; name: string } {
  assertCacheableDigest(digest);
  const hex = digest.slice('sha256:'.length);
  return { shard: hex.slice(0, 2), name: hex };
}
