import { unlink } from 'node:fs/promises';
import { join } from 'node:path';
import {
  blobOf,
  CacheUnderTest,
  collect,
  createCache,
  FakeUpstream,
  makeTempDir,
  removeDir,
  sha256,
} from './testing/blob-cache.fixtures';

async function fill(t: CacheUnderTest, data: Buffer): Promise<string> {
  const digest = sha256(data);
  const result = await t.coordinator.open(digest, data.length, new FakeUpstream(data).open);
  await collect(result.body);
  await t.coordinator.whenIdle();
  return digest;
}

const HOUR = 3_600_000;

/** BlobCacheService.lease: a committed blob handed to nginx (X-Accel-Redirect) instead of read. */
describe('BlobCacheService.lease', () => {
  let dir: string;
  let t: CacheUnderTest | undefined;

  beforeEach(async () => {
    dir = await makeTempDir();
    t = undefined;
  });

  afterEach(async () => {
    await t?.coordinator.whenIdle();
    await t?.cache.close();
    await removeDir(dir);
  });

  it('names the committed file relative to the cache dir and counts a hit, without reading it', async () => {
    t = await createCache(dir);
    const data = blobOf(100, 1);
    const digest = await fill(t, data);
    const hits = t.metrics.counts.hit;
    const bytes = t.metrics.counts.bytesFromCache;
    const hex = digest.slice('sha256:'.length);
    expect(await t.cache.lease(digest, HOUR)).toEqual({
      relativePath: `sha256/${hex.slice(0, 2)}/${hex}`,
      sizeBytes: 100,
    });
    expect(t.metrics.counts.hit).toBe(hits + 1);
    expect(t.metrics.counts.bytesFromCache).toBe(bytes);
    expect(t.cache.activeReaders(digest)).toBe(0);
  });

  it('is null for a blob not committed', async () => {
    t = await createCache(dir);
    expect(await t.cache.lease(sha256(blobOf(10, 2)), HOUR)).toBeNull();
  });

  it('drops a blob whose file vanished from the index and answers null (the caller fills it again)', async () => {
    t = await createCache(dir);
    const digest = await fill(t, blobOf(100, 3));
    const hex = digest.slice('sha256:'.length);
    await unlink(join(dir, 'sha256', hex.slice(0, 2), hex));
    expect(await t.cache.lease(digest, HOUR)).toBeNull();
    expect(t.cache.stat(digest)).toBeNull();
  });

  it('keeps a leased blob from eviction for the hold, and lets it go after', async () => {
    t = await createCache(dir, { maxBytes: 200 });
    const [a, b, c, d] = [4, 5, 6, 7].map((seed) => blobOf(100, seed));
    const da = await fill(t, a);
    const db = await fill(t, b);
    await t.cache.lease(da, HOUR);
    // B read after the lease: A is the least recently used, yet pinned.
    await collect((await t.cache.openRange(db))!);
    const dc = await fill(t, c);
    expect(t.cache.stat(da)).toBe(100);
    expect(t.cache.stat(db)).toBeNull();

    // A short hold: once it is over, A is the next victim as the LRU says.
    const leased = await t.cache.lease(dc, 1);
    expect(leased).not.toBeNull();
    await new Promise((r) => setTimeout(r, 20));
    await collect((await t.cache.openRange(da))!);
    await fill(t, d);
    expect(t.cache.stat(dc)).toBeNull();
    expect(t.cache.stat(da)).toBe(100);
  });
});
