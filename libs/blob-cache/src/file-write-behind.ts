import type { BlobFileHandle } from './blob-file-system.service';

export interface FileWriteBehindEvents {
  /** Every byte before `upTo` is in the file. */
  written(upTo: number): void;
  /** A write failed: nothing more is written, what was queued is dropped. */
  failed(error: unknown): void;
}

/**
 * Chunks written to one file in order, behind the stream that produced them. What arrives while a
 * write runs goes into the next one (writev, no copy), so a fast upstream costs a few large
 * thread-pool writes instead of one per 64 KiB socket read. Shared by a blob fill and by a
 * download's first fetch (dev-docs/performance.md, "Cold downloads").
 */
export class FileWriteBehind {
  private queue: Buffer[] = [];
  private queued = 0;
  private running: Promise<void> | undefined;
  private stopped = false;
  /** Bytes in the file, counted from its start. */
  private done = 0;

  constructor(
    private readonly handle: BlobFileHandle,
    private readonly events: FileWriteBehindEvents,
  ) {}

  /** Bytes in the file so far. */
  get written(): number {
    return this.done;
  }

  /** Bytes queued and not yet handed to a write. */
  get queuedBytes(): number {
    return this.queued;
  }

  push(chunk: Buffer): void {
    if (this.stopped) return;
    this.queue.push(chunk);
    this.queued += chunk.length;
    this.running ??= this.drain();
  }

  /** Resolves once nothing is queued or being written; never rejects. */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  /** Nothing more is written; what is queued is dropped (a write running still ends). */
  stop(): void {
    this.stopped = true;
    this.queue = [];
    this.queued = 0;
  }

  private async drain(): Promise<void> {
    try {
      while (this.queue.length > 0 && !this.stopped) {
        const chunks = this.queue;
        const bytes = this.queued;
        this.queue = [];
        this.queued = 0;
        try {
          if (chunks.length === 1) await this.handle.write(chunks[0], this.done);
          else if (this.handle.writev) await this.handle.writev(chunks, this.done);
          else await this.handle.write(Buffer.concat(chunks, bytes), this.done);
        } catch (error) {
          if (this.stopped) return;
          this.stop();
          this.events.failed(error);
          return;
        }
        this.done += bytes;
        this.events.written(this.done);
      }
    } finally {
      this.running = undefined;
    }
  }
}
