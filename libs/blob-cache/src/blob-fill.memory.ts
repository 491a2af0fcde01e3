import { BlobCacheException } from './blob-cache.exception';

/**
 * Upstream chunks a fill holds in memory, in order: bytes not yet on disk (write-behind), or past
 * a disk failure (pass-through). Dropped from the front once no reader can need them.
 */
export class BlobFillMemory {
  private chunks: Array<{ start: number; chunk: Buffer }> = [];

  constructor(private readonly digest: string) {}

  push(start: number, chunk: Buffer): void {
    this.chunks.push({ start, chunk });
  }

  /** Whether the byte at `position` is held. */
  holds(position: number): boolean {
    if (this.chunks.length === 0) return false;
    const last = this.chunks[this.chunks.length - 1];
    return position >= this.chunks[0].start && position < last.start + last.chunk.length;
  }

  /** Up to `length` bytes at `position`, without copying; throws when they were dropped. */
  read(position: number, length: number): Buffer {
    for (const { start, chunk } of this.chunks) {
      if (position < start) break;
      if (position < start + chunk.length) {
        const offset = position - start;
        return chunk.subarray(offset, offset + Math.min(length, chunk.length - offset));
      }
    }
    throw new BlobCacheException(
      'CACHE_READ_FAILED',
      `${this.digest}: byte ${position} is no longer buffered`,
    );
  }

  /** The bytes from `position` to the end, as views of the chunks held (no copy). */
  from(position: number): Buffer[] {
    const out: Buffer[] = [];
    for (const { start, chunk } of this.chunks) {
      if (start + chunk.length <= position) continue;
      out.push(position > start ? chunk.subarray(position - start) : chunk);
    }
    return out;
  }

  /** Drops the chunks that end at or before `position`. */
  dropBefore(position: number): void {
    while (this.chunks.length > 0 && this.chunks[0].start + this.chunks[0].chunk.length <= position)
      this.chunks.shift();
  }

  clear(): void {
    this.chunks = [];
  }
}
