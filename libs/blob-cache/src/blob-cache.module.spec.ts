import { Test } from '@nestjs/testing';
import { BlobCacheModule } from './blob-cache.module';
import { BlobCacheService } from './blob-cache.service';
import { BlobFillCoordinator } from './blob-fill.coordinator';
import { InMemoryBlobIndexStore } from './in-memory-blob-index.store';
import {
  blobOf,
  collect,
  FakeUpstream,
  filesUnder,
  makeTempDir,
  RecordingLogger,
  removeDir,
  sha256,
} from './testing/blob-cache.fixtures';

describe('BlobCacheModule', () => {
  it('wires the cache from one factory, initialises it on start and flushes on shutdown', async () => {
    const dir = await makeTempDir();
    const store = new InMemoryBlobIndexStore();
    try {
      const moduleRef = await Test.createTestingModule({
        imports: [
          BlobCacheModule.forRootAsync({
            useFactory: () => ({
              options: { cacheDir: dir, maxBytes: 0, fillTimeoutMs: 10_000, flushIntervalMs: 0 },
              indexStore: store,
              logger: new RecordingLogger(),
            }),
          }),
        ],
      }).compile();
      moduleRef.enableShutdownHooks();
      const app = await moduleRef.init();
      expect(await filesUnder(dir)).toEqual([]);

      const coordinator = app.get(BlobFillCoordinator);
      const data = blobOf(1000);
      const result = await coordinator.open(sha256(data), data.length, new FakeUpstream(data).open);
      expect((await collect(result.body)).equals(data)).toBe(true);
      await coordinator.whenIdle();
      expect(app.get(BlobCacheService).stat(sha256(data))).toBe(1000);

      await app.close();
      expect(store.rows.get(sha256(data))?.sizeBytes).toBe(1000);
    } finally {
      await removeDir(dir);
    }
  });
});
