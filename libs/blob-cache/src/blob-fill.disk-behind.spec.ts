import { BlobCacheException } from './blob-cache.exception';
import { BlobFileHandle, BlobFileSystem } from './blob-file-system.service';
import {
  blobOf,
  CacheUnderTest,
  createCache,
  digestOf,
  FakeUpstream,
  makeTempDir,
  removeDir,
  sha256,
} from './testing/blob-cache.fixtures';

/** Holds every write of the temp file until `release()`. */
class HeldWritesFileSystem extends BlobFileSystem {
  private release!: () => void;
  private readonly released = new Promise<void>((resolve) => (this.release = resolve));
  writesStarted = 0;

  releaseWrites(): void {
    this.release();
  }

  override async createExclusive(path: string): Promise<BlobFileHandle> {
    const inner = await super.createExclusive(path);
    return {
      ...inner,
      read: (buffer, offset, length, position) => inner.read(buffer, offset, length, position),
      close: () => inner.close(),
      write: async (buffer: Buffer, position: number) => {
        this.writesStarted++;
        await this.released;
        await inner.write(buffer, position);
      },
      fd: inner.fd,
    };
  }
}

describe('a fill hashed from memory', () => {
  let dir: string;
  let t: CacheUnderTest;
  let disk: HeldWritesFileSystem;

  beforeEach(async () => {
    dir = await makeTempDir();
    disk = new HeldWritesFileSystem();
    t = await createCache(dir, { hashThreads: 0 }, { fileSystem: disk });
  });

  afterEach(async () => {
    disk.releaseWrites();
    await t.coordinator.whenIdle();
    await t.cache.close();
    await removeDir(dir);
  });

  it('gives its readers the last byte once verified, without waiting for the disk, and commits after', async () => {
    const data = blobOf(1024 * 1024, 9);
    const digest = sha256(data);
    const upstream = new FakeUpstream(data);
    const { body } = await t.coordinator.open(digest, data.length, upstream.open);

    // Every write is held: the whole body still reaches the reader, verified.
    expect(await digestOf(body)).toEqual({ digest, bytes: data.length });
    expect(disk.writesStarted).toBeGreaterThan(0);
    expect(t.cache.stat(digest)).toBeNull();

    disk.releaseWrites();
    await t.coordinator.whenIdle();
    expect(t.cache.stat(digest)).toBe(data.length);
    const hit = await t.coordinator.open(digest, data.length, upstream.open);
    expect(hit.source).toBe('hit');
    expect(await digestOf(hit.body)).toEqual({ digest, bytes: data.length });
    expect(upstream.opens).toBe(1);
  });

  it('still refuses a wrong body before its last byte while the disk is behind', async () => {
    const data = blobOf(512 * 1024, 4);
    const wrong = Buffer.from(data);
    wrong[wrong.length - 1] ^= 0xff;
    const { body } = await t.coordinator.open(sha256(data), data.length, new FakeUpstream(wrong).open);
    let received = 0;
    body.on('data', (chunk: Buffer) => (received += chunk.length));
    const error = await new Promise<Error>((resolve) => body.once('error', resolve));
    expect(error instanceof BlobCacheException && error.failure).toBe('DIGEST_MISMATCH');
    expect(received).toBeLessThan(data.length);
  });
});
