import { BlobByteSource } from './blob-read.stream';

/** What a claim needs of its fill (BlobFillOperation). */
export interface ClaimedFill {
  readFor(
    claim: FillReaderClaim,
    position: number,
    maxLength: number,
    endExclusive: number,
  ): Promise<Buffer | null>;
  releaseClaim(claim: FillReaderClaim): void;
}

/** One reader's hold on a fill: its position (so buffered bytes are kept for it) and its reads. */
export class FillReaderClaim implements BlobByteSource {
  private diskRead: Promise<unknown> = Promise.resolve();
  private released = false;

  constructor(
    private readonly fill: ClaimedFill,
    public position: number,
  ) {}

  get isReleased(): boolean {
    return this.released;
  }

  next(position: number, maxLength: number, endExclusive: number): Promise<Buffer | null> {
    return this.fill.readFor(this, position, maxLength, endExclusive);
  }

  track<T>(read: Promise<T>): Promise<T> {
    this.diskRead = read.catch(() => undefined);
    return read;
  }

  /** Waits for a disk read in progress, so the shared descriptor is never closed under it. */
  release(): void {
    if (this.released) return;
    this.released = true;
    void this.diskRead.then(() => this.fill.releaseClaim(this));
  }
}
