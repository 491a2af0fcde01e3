import { DataSource } from 'typeorm';
import { createDataSourceOptions } from '@gatehouse/database';
import { createTestDatabase, TestDatabase } from '@gatehouse/testing';
import {
  blobOf,
  collect,
  createCache,
  FakeUpstream,
  makeTempDir,
  removeDir,
  sha256,
} from './testing/blob-cache.fixtures';
import { TypeormBlobIndexStore } from './typeorm-blob-index.store';

describe('TypeormBlobIndexStore (real PostgreSQL, migrated schema)', () => {
  let db: TestDatabase;
  let ds: DataSource;
  let store: TypeormBlobIndexStore;

  beforeAll(async () => {
    db = await createTestDatabase();
    ds = await new DataSource(createDataSourceOptions(db.url, 2)).initialize();
    store = new TypeormBlobIndexStore(ds);
  });
  afterAll(async () => {
    await ds?.destroy();
    await db?.drop();
  });
  beforeEach(async () => {
    await ds.query('DELETE FROM cached_blobs');
  });

  const digest = (c: string) => `sha256:${c.repeat(64)}`;
  const jan = new Date('2024-01-01T00:00:00Z');
  const feb = new Date('2024-02-01T00:00:00Z');

  it('upserts batches, keeps created_at, never moves access time backwards, handles sizes above 4 GiB', async () => {
    await store.saveAdded([
      { digest: digest('a'), sizeBytes: 5_000_000_000, createdAt: jan, lastAccessedAt: jan, hitCount: 0 },
      { digest: digest('b'), sizeBytes: 10, createdAt: jan, lastAccessedAt: feb, hitCount: 2 },
    ]);
    await store.saveTouched([
      { digest: digest('a'), sizeBytes: 5_000_000_000, createdAt: feb, lastAccessedAt: feb, hitCount: 7 },
      { digest: digest('b'), sizeBytes: 10, createdAt: feb, lastAccessedAt: jan, hitCount: 3 },
    ]);
    await store.saveAdded([]);
    const rows = (await store.loadAll()).sort((x, y) => x.digest.localeCompare(y.digest));
    expect(rows).toEqual([
      { digest: digest('a'), sizeBytes: 5_000_000_000, createdAt: jan, lastAccessedAt: feb, hitCount: 7 },
      { digest: digest('b'), sizeBytes: 10, createdAt: jan, lastAccessedAt: feb, hitCount: 3 },
    ]);

    await store.delete([digest('b'), digest('c')]);
    await store.delete([]);
    expect((await store.loadAll()).map((r) => r.digest)).toEqual([digest('a')]);
  });

  it('carries the cache index across a restart', async () => {
    const dir = await makeTempDir();
    try {
      const first = await createCache(dir, {}, { store });
      const data = blobOf(4096, 5);
      const result = await first.coordinator.open(sha256(data), data.length, new FakeUpstream(data).open);
      await collect(result.body);
      await first.coordinator.whenIdle();
      await collect((await first.cache.openRange(sha256(data)))!);
      await first.cache.close();

      const second = await createCache(dir, {}, { store });
      expect(second.cache.stat(sha256(data))).toBe(4096);
      expect((await store.loadAll())[0]).toMatchObject({
        digest: sha256(data),
        sizeBytes: 4096,
        hitCount: 1,
      });
      await second.cache.close();
    } finally {
      await removeDir(dir);
    }
  });
});
