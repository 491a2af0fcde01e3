import { mkdir, readFile, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { BlobFileSystem } from './blob-file-system.service';
import { BlobIndexRow } from './blob-index-store.interface';
import { InMemoryBlobIndexStore } from './in-memory-blob-index.store';
import {
  blobOf,
  CacheUnderTest,
  collect,
  createCache,
  FakeUpstream,
  filesUnder,
  makeTempDir,
  removeDir,
  sha256,
} from './testing/blob-cache.fixtures';

function blobFile(digest: string): string {
  return join('sha256', digest.slice(7, 9), digest.slice(7));
}

async function writeBlobFile(dir: string, data: Buffer): Promise<string> {
  const digest = sha256(data);
  await mkdir(join(dir, 'sha256', digest.slice(7, 9)), { recursive: true });
  await writeFile(join(dir, blobFile(digest)), data);
  return digest;
}

async function fill(t: CacheUnderTest, data: Buffer): Promise<string> {
  const digest = sha256(data);
  const result = await t.coordinator.open(digest, data.length, new FakeUpstream(data).open);
  await collect(result.body);
  await t.coordinator.whenIdle();
  return digest;
}

describe('BlobCacheService', () => {
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

  describe('LRU eviction', () => {
    it('evicts least recently used blobs down to the cap, skipping blobs being read', async () => {
      t = await createCache(dir, { maxBytes: 300 });
      const [a, b, c, d, e] = [1, 2, 3, 4, 5].map((seed) => blobOf(100, seed));
      const [da, db, dc] = [await fill(t, a), await fill(t, b), await fill(t, c)];

      // A is read (and stays open) first, then B and C are read: A is now the least recently used.
      const readingA = (await t.cache.openRange(da))!;
      for (const digest of [db, dc]) await collect((await t.cache.openRange(digest))!);
      expect(t.cache.activeReaders(da)).toBe(1);

      const dd = await fill(t, d);
      expect(t.cache.stat(da)).toBe(100);
      expect(t.cache.stat(db)).toBeNull();
      expect(t.cache.stats()).toMatchObject({ blobs: 3, bytes: 300, evictions: 1 });
      expect((await collect(readingA)).equals(a)).toBe(true);
      expect(t.cache.activeReaders(da)).toBe(0);

      const de = await fill(t, e);
      expect(t.cache.stat(da)).toBeNull();
      expect(t.cache.stats()).toMatchObject({ blobs: 3, bytes: 300, evictions: 2 });
      expect(await filesUnder(dir)).toEqual([dc, dd, de].map(blobFile).sort());
      expect(t.metrics.counts).toMatchObject({ evictedBlobs: 2, evictedBytes: 200 });
    });

    it('never evicts a blob whose fill is still being read, even when the cap is exceeded', async () => {
      t = await createCache(dir, { maxBytes: 150 });
      const big = blobOf(200, 9);
      const digest = sha256(big);
      const reader = await t.coordinator.open(digest, big.length, new FakeUpstream(big).open);
      await t.coordinator.whenIdle();
      expect(t.cache.stat(digest)).toBe(200);
      expect((await collect(reader.body)).equals(big)).toBe(true);

      // Once nobody reads it, the next commit evicts it.
      await fill(t, blobOf(10, 1));
      expect(t.cache.stat(digest)).toBeNull();
    });

    it('a maxBytes of 0 means no cap', async () => {
      t = await createCache(dir, { maxBytes: 0 });
      for (let seed = 1; seed <= 5; seed++) await fill(t, blobOf(1000, seed));
      expect(t.cache.stats()).toMatchObject({ blobs: 5, evictions: 0 });
    });
  });

  describe('init()', () => {
    it('removes temp files and strays, and reconciles the index store with the files', async () => {
      const kept = blobOf(500, 1);
      const unindexed = blobOf(700, 2);
      const damaged = blobOf(300, 3);
      const [dKept, dUnindexed, dDamaged] = [
        await writeBlobFile(dir, kept),
        await writeBlobFile(dir, unindexed),
        await writeBlobFile(dir, damaged),
      ];
      const dMissing = sha256(blobOf(10, 4));
      const old = new Date('2024-01-01T00:00:00Z');
      const store = new InMemoryBlobIndexStore([
        { digest: dKept, sizeBytes: 500, createdAt: old, lastAccessedAt: old, hitCount: 5 },
        { digest: dMissing, sizeBytes: 10, createdAt: old, lastAccessedAt: old, hitCount: 1 },
        { digest: dDamaged, sizeBytes: 301, createdAt: old, lastAccessedAt: old, hitCount: 1 },
      ]);
      await mkdir(join(dir, 'tmp', 'leftover-dir'), { recursive: true });
      await writeFile(join(dir, 'tmp', 'abc.partial'), 'half a blob');
      await writeFile(join(dir, 'sha256', dKept.slice(7, 9), 'not-a-digest'), 'x');
      await writeFile(join(dir, 'sha256', dKept.slice(7, 9), `${dKept.slice(7)}.partial`), 'x');
      const wrongShard = dKept.slice(7, 9) === 'ff' ? '00' : 'ff';
      await mkdir(join(dir, 'sha256', wrongShard), { recursive: true });
      await writeFile(join(dir, 'sha256', wrongShard, dKept.slice(7)), kept);
      await mkdir(join(dir, 'sha256', 'zz'), { recursive: true });
      await writeFile(join(dir, 'sha256', 'stray-file'), 'x');

      t = await createCache(dir, {}, { store });

      expect(await filesUnder(dir)).toEqual([blobFile(dKept), blobFile(dUnindexed)].sort());
      expect(await filesUnder(join(dir, 'tmp'))).toEqual([]);
      expect(t.cache.stat(dKept)).toBe(500);
      expect(t.cache.stat(dUnindexed)).toBe(700);
      expect(t.cache.stat(dDamaged)).toBeNull();
      expect(t.cache.stat(dMissing)).toBeNull();
      expect([...store.rows.keys()].sort()).toEqual([dKept, dUnindexed].sort());
      expect(store.rows.get(dKept)).toMatchObject({ hitCount: 5, lastAccessedAt: old });
      expect(store.rows.get(dUnindexed)).toMatchObject({ sizeBytes: 700, hitCount: 0 });
      expect(t.logger.lines.some((l) => l.obj.digest === dDamaged)).toBe(true);
    });

    it('orders the loaded index by last access, so the cap evicts the stalest blob first', async () => {
      const blobs = [blobOf(100, 1), blobOf(100, 2), blobOf(100, 3)];
      const digests = await Promise.all(blobs.map((b) => writeBlobFile(dir, b)));
      const at = (day: number) => new Date(Date.UTC(2024, 0, day));
      const rows: BlobIndexRow[] = [
        { digest: digests[0], sizeBytes: 100, createdAt: at(1), lastAccessedAt: at(9), hitCount: 1 },
        { digest: digests[1], sizeBytes: 100, createdAt: at(1), lastAccessedAt: at(2), hitCount: 1 },
      ];
      // digests[2] has no row: its file time decides.
      await utimes(join(dir, blobFile(digests[2])), at(5), at(5));
      t = await createCache(dir, { maxBytes: 200 }, { store: new InMemoryBlobIndexStore(rows) });
      expect(t.cache.stat(digests[1])).toBeNull();
      expect(t.cache.stat(digests[0])).toBe(100);
      expect(t.cache.stat(digests[2])).toBe(100);
      expect(t.cache.stats().evictions).toBe(1);
    });
  });

  describe('index persistence', () => {
    it('batches hits and adds into periodic flushes instead of writing per request', async () => {
      const store = new InMemoryBlobIndexStore();
      t = await createCache(dir, { flushBatchSize: 2 }, { store });
      const digests: string[] = [];
      for (let seed = 1; seed <= 3; seed++) digests.push(await fill(t, blobOf(50, seed)));
      for (let i = 0; i < 40; i++) await collect((await t.cache.openRange(digests[0]))!);
      expect(store.calls).toEqual({ loadAll: 1, saveAdded: 0, saveTouched: 0, delete: 0 });

      await t.cache.flush();
      expect(store.calls.saveAdded).toBe(2);
      expect(store.rows.get(digests[0])).toMatchObject({ hitCount: 40, sizeBytes: 50 });

      for (let i = 0; i < 2; i++) await collect((await t.cache.openRange(digests[1]))!);
      await t.cache.flush();
      expect(store.calls.saveTouched).toBe(1);
      expect(store.rows.get(digests[1])?.hitCount).toBe(2);

      await t.cache.flush();
      expect(store.calls).toEqual({ loadAll: 1, saveAdded: 2, saveTouched: 1, delete: 0 });
    });

    it('records evictions as deletes, keeps changes when the store fails, and flushes on close', async () => {
      let failNext = true;
      const store = new (class extends InMemoryBlobIndexStore {
        override async saveAdded(rows: BlobIndexRow[]): Promise<void> {
          if (failNext) {
            failNext = false;
            throw new Error('database unavailable');
          }
          return super.saveAdded(rows);
        }
      })();
      t = await createCache(dir, { maxBytes: 100 }, { store });
      const first = await fill(t, blobOf(100, 1));
      await expect(t.cache.flush()).rejects.toThrow('database unavailable');
      expect(store.rows.size).toBe(0);
      await t.cache.flush();
      expect([...store.rows.keys()]).toEqual([first]);

      const second = await fill(t, blobOf(100, 2));
      await t.cache.close();
      expect([...store.rows.keys()]).toEqual([second]);
      expect(store.calls.delete).toBe(1);
    });

    it('flushes on its own every flushIntervalMs', async () => {
      let saved!: () => void;
      const flushed = new Promise<void>((resolve) => (saved = resolve));
      const store = new (class extends InMemoryBlobIndexStore {
        override async saveAdded(rows: BlobIndexRow[]): Promise<void> {
          await super.saveAdded(rows);
          saved();
        }
      })();
      t = await createCache(dir, { flushIntervalMs: 5 }, { store });
      const digest = await fill(t, blobOf(10, 1));
      await flushed;
      expect(store.rows.has(digest)).toBe(true);
    });
  });

  it('creates its directories 0700 and its files 0600 even under umask 000', async () => {
    const cacheDir = join(dir, 'cache');
    const previous = process.umask(0);
    try {
      t = await createCache(cacheDir);
      const data = blobOf(1000, 3);
      const digest = await fill(t, data);
      const mode = async (p: string) => (await stat(p)).mode & 0o777;
      for (const d of ['', 'sha256', 'tmp', join('sha256', digest.slice(7, 9))])
        expect([d, (await mode(join(cacheDir, d))).toString(8)]).toEqual([d, '700']);
      expect((await mode(join(cacheDir, blobFile(digest)))).toString(8)).toBe('600');
      // A temp file of a fill in progress too.
      const temp = await t.cache.createTempFile(sha256(blobOf(10, 4)));
      expect((await mode(temp.path)).toString(8)).toBe('600');
      await temp.handle.close();
      await t.cache.discardTempFile(temp.path);
    } finally {
      process.umask(previous);
    }
  });

  it('answers stat from memory, without touching the disk', async () => {
    let calls = 0;
    const fileSystem = new (class extends BlobFileSystem {
      override async stat(path: string) {
        calls++;
        return super.stat(path);
      }
      override async readdir(path: string) {
        calls++;
        return super.readdir(path);
      }
    })();
    await writeBlobFile(dir, blobOf(10, 1));
    t = await createCache(dir, {}, { fileSystem });
    const before = calls;
    expect(t.cache.stat(sha256(blobOf(10, 1)))).toBe(10);
    expect(t.cache.stat(sha256(blobOf(10, 2)))).toBeNull();
    expect(t.cache.stat('sha256:../../etc/passwd')).toBeNull();
    expect(calls).toBe(before);
  });

  it('treats a blob whose file vanished as a miss and fills it again', async () => {
    t = await createCache(dir);
    const data = blobOf(1000, 1);
    const digest = await fill(t, data);
    await removeDir(join(dir, 'sha256'));
    expect(await t.cache.openRange(digest)).toBeNull();
    expect(t.cache.stat(digest)).toBeNull();
    const upstream = new FakeUpstream(data);
    const again = await t.coordinator.open(digest, data.length, upstream.open);
    expect(again.source).toBe('fill-started');
    expect((await collect(again.body as Readable)).equals(data)).toBe(true);
  });

  it('verify() re-hashes a blob and removes it when corrupt', async () => {
    t = await createCache(dir);
    const good = await fill(t, blobOf(5000, 1));
    const bad = await fill(t, blobOf(5000, 2));
    const file = join(dir, blobFile(bad));
    const bytes = await readFile(file);
    bytes[42] ^= 1;
    await writeFile(file, bytes);

    expect(await t.cache.verify(good)).toEqual({ digest: good, status: 'ok' });
    expect(await t.cache.verify(bad)).toMatchObject({
      digest: bad,
      status: 'corrupt',
      actualSizeBytes: 5000,
    });
    expect(t.cache.stat(bad)).toBeNull();
    expect(await filesUnder(dir)).toEqual([blobFile(good)]);
    expect(await t.cache.verify(bad)).toEqual({ digest: bad, status: 'missing' });
  });
});
