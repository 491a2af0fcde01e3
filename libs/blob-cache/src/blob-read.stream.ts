import { Readable } from 'node:stream';

/**
 * Where a BlobReadStream gets its bytes: a committed file, or a fill that is still running.
 */
export interface BlobByteSource {
  /**
   * Resolves with 1..maxLength bytes starting at `position` (waiting for a fill to produce them),
   * or with null once `position` reached `endExclusive` and the content is known to be good.
   * Rejects when the content turned out bad or could not be read.
   */
  next(position: number, maxLength: number, endExclusive: number): Promise<Buffer | null>;
  /** Called exactly once when the stream closes, however it closes. */
  release(): void;
}

/**
 * A Readable over a byte range of a blob. It reads one chunk at a time and only when its consumer
 * asks, so a slow client holds at most about one high-water mark of memory and never slows down
 * anyone else.
 */
export class BlobReadStream extends Readable {
  private position: number;
  private pumping = false;

  constructor(
    private readonly source: BlobByteSource,
    readonly start: number,
    readonly endExclusive: number,
    protected readonly chunkBytes: number,
  ) {
    super({ highWaterMark: chunkBytes });
    this.position = start;
  }

  /** Bytes pushed to this stream's reader so far. */
  get pushedBytes(): number {
    return this.position - this.start;
  }

  override _read(): void {
    if (this.pumping) return;
    this.pumping = true;
    void this.pump();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.source.release();
    callback(error);
  }

  private async pump(): Promise<void> {
    try {
      for (;;) {
        const chunk = await this.source.next(this.position, this.chunkBytes, this.endExclusive);
        if (this.destroyed) return;
        if (chunk === null) {
          this.push(null);
          return;
        }
        this.position += chunk.length;
        if (!this.push(chunk)) return;
      }
    } catch (error) {
      this.destroy(error instanceof Error ? error : new Error(String(error)));
    } finally {
      this.pumping = false;
    }
  }
}
