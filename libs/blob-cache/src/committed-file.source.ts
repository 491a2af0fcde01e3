import { BlobCacheException } from './blob-cache.exception';
import { BlobCacheMetrics } from './blob-cache-metrics.interface';
import { BlobFileHandle } from './blob-file-system.service';
import { BlobByteSource } from './blob-read.stream';

/** The bytes of a committed blob file, read positionally; the handle closes after the last read. */
export class CommittedFileSource implements BlobByteSource {
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
    const n = await this.readInto(buffer, buffer.length, position);
    return buffer.subarray(0, n);
  }

  /** Reads 1..length bytes at `position` into `buffer` (a reused one: the lean path). */
  async readInto(buffer: Buffer, length: number, position: number): Promise<number> {
    const read = this.handle.read(buffer, 0, length, position);
    this.inFlight = read.catch(() => undefined);
    const n = await read;
    if (n === 0) throw new BlobCacheException('CACHE_READ_FAILED', `${this.digest} is shorter than indexed`);
    this.metrics.bytesFromCache(n);
    return n;
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    this.onRelease();
    void this.inFlight.then(() => this.handle.close()).catch(() => undefined);
  }
}
