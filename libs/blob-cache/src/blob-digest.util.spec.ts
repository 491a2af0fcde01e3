import { BlobCacheException } from './blob-cache.exception';
import { assertCacheableDigest, blobShardAndName, isCacheableDigest } from './blob-digest.util';

const HEX = 'ab'.repeat(32);

describe('cacheable digests', () => {
  it('accepts strict sha256 digests and shards by the first two hex digits', () => {
    expect(isCacheableDigest(`sha256:${HEX}`)).toBe(true);
    expect(blobShardAndName(`sha256:${HEX}`)).toEqual({ shard: 'ab', name: HEX });
  });

  it.each([
    `sha256:${HEX.toUpperCase()}`,
    `sha256:${HEX}0`,
    `sha256:${HEX.slice(1)}`,
    `sha512:${'ab'.repeat(64)}`,
    `sha256:../../${HEX.slice(6)}`,
    `sha256:${HEX}\n`,
    `SHA256:${HEX}`,
    HEX,
  ])('rejects %j before any path is built', (digest) => {
    expect(isCacheableDigest(digest)).toBe(false);
    expect(() => assertCacheableDigest(digest)).toThrow(BlobCacheException);
    expect(() => blobShardAndName(digest)).toThrow(BlobCacheException);
  });

  it('maps a rejected digest to the OCI DIGEST_INVALID code', () => {
    try {
      assertCacheableDigest('md5:abc');
      throw new Error('not rejected');
    } catch (error) {
      expect(error).toBeInstanceOf(BlobCacheException);
      expect((error as BlobCacheException).code).toBe('DIGEST_INVALID');
      expect((error as BlobCacheException).failure).toBe('DIGEST_NOT_CACHEABLE');
    }
  });
});
