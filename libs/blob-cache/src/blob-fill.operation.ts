/*
 * One upstream fetch of one blob, shared by every reader that asks for it while it runs.
 *
 * Normal path: the upstream body is written to a temp file (positional writes) while it is hashed.
 * Readers share the temp file's descriptor and read what has been written so far with positional
 * reads, waiting for more when they catch up (tail-follow). The fill never waits for a reader and a
 * reader never holds more than its stream's high-water mark, so a slow client costs nothing to the
 * others. Writes run behind the upstream (at most WRITE_BEHIND_BYTES queued, then the fill waits for
 * the disk): chunks not yet on disk stay in memory and a reader that caught up with the fill is
 * served from there, so the first client of a cold pull is not paced by a disk write and a disk read
 * per chunk. After the digest and the size match, the fill is `verified` and the file is renamed into
 * place; the descriptor stays valid across the rename, so readers finish from it.
 *
 * A reader is never given the last byte of its range before the fill is verified. A client whose
 * response carries Content-Length therefore cannot see a complete body unless it is the right one;
 * on failure every reader is destroyed with the error instead.
 *
 * Disk failure (ENOSPC, EACCES, EROFS, EDQUOT, EIO... on creating or writing the temp file): the
 * fill keeps hashing and switches to pass-through. Bytes already written stay readable through the
 * open descriptor (the temp path itself is unlinked at once, so no partial file remains); later
 * bytes are kept in memory as a list of upstream chunks, dropped as soon as the slowest reader has
 * read past them. To bound that memory, the fill stops pulling from upstream while it is more than
 * `passThroughBufferBytes` ahead of its slowest reader: this is an ordinary proxy, paced by its
 * clients, until the fill timeout. The degraded fill is detached from the coordinator at once, so
 * a later request starts a fresh fill (which tries the disk again) instead of joining a fill that
 * can no longer serve a byte 0 it has dropped; with the disk broken, concurrent clients may thus
 * cost one upstream fetch each. A degraded fill left without readers is aborted: nothing would
 * use its bytes.
 */
import { finished, Readable } from 'node:stream';
import { BlobCacheException } from './blob-cache.exception';
import { BlobTempFile } from './blob-cache.service';
import { BlobFillMemory } from './blob-fill.memory';
import { FileWriteBehind } from './file-write-behind';
import { BlobHashJob } from './blob-hasher';
import { describe, untilAborted } from './blob-fill.util';
import { BlobFillContext, OpenUpstreamBlob } from './blob-fill.types';
import { ClaimedFill, FillReaderClaim } from './fill-reader.claim';

export type { BlobFillContext, OpenUpstreamBlob } from './blob-fill.types';
export { FillReaderClaim } from './fill-reader.claim';

type FillState = 'starting' | 'streaming' | 'verified' | 'failed';

/** Upstream bytes received but not yet written that a fill holds before it waits for the disk. */
export const WRITE_BEHIND_BYTES = 4 * 1024 * 1024;
/** Bytes already on disk that a fill keeps in memory for readers close behind it. */
export const READER_MEMORY_BYTES = 8 * 1024 * 1024;

export class BlobFillOperation implements ClaimedFill {
  /** Resolves with the blob size once upstream answered; rejects with upstream's own error otherwise. */
  readonly ready: Promise<number>;
  private resolveReady!: (size: number) => void;
  private rejectReady!: (error: unknown) => void;
  private state: FillState = 'starting';
  private size = 0;
  private received = 0;
  private degraded = false;
  private memoryStart = 0;
  /**
   * Bytes at or past `diskWritten` (not yet written, or past a disk failure), and the last
   * READER_MEMORY_BYTES before it while a reader still needs them, in order. Readers read from here
   * whatever it holds, the file otherwise.
   */
  private readonly memory: BlobFillMemory;
  /** Writes the chunks to the temp file in order, batched (none once the fill degraded). */
  private writer: FileWriteBehind | undefined;
  private temp: BlobTempFile | undefined;
  /** Hashes what lands in the temp file (a worker thread), or what is pushed to it. */
  private hash: BlobHashJob | undefined;
  /** True once bytes must be pushed to `hash` (no temp file, or the disk failed). */
  private hashFromMemory = false;
  private tempDiscarded: Promise<void> | undefined;
  private handleClosed = false;
  private settled = false;
  private error: BlobCacheException | undefined;
  private readonly claims = new Set<FillReaderClaim>();
  private waiters: Array<() => void> = [];
  private spaceWaiter: (() => void) | undefined;
  private readonly controller = new AbortController();

  /**
   * `digest` is what the fill is keyed and pinned by. With `learn`, it is only a key (content known
   * by an identity, e.g. a release asset): the content is committed under the digest it hashes to,
   * which `learn` receives once verified and committed (size checked, digest computed).
   */
  constructor(
    readonly digest: string,
    private readonly expectedSize: number | undefined,
    private readonly openUpstream: OpenUpstreamBlob,
    private readonly context: BlobFillContext,
    private readonly learn?: (digest: string) => void,
  ) {
    this.memory = new BlobFillMemory(digest);
    this.ready = new Promise<number>((resolve, reject) => {
      this.resolveReady = resolve;
      this.rejectReady = reject;
    });
    // Callers that only join later must not turn an early upstream failure into an unhandled rejection.
    this.ready.catch(() => undefined);
  }

  /** Runs the fill to its end; never rejects. */
  run(): Promise<void> {
    this.context.cache.pin(this.digest);
    this.context.metrics.fillStarted();
    return this.execute();
  }

  get isDegraded(): boolean {
    return this.degraded;
  }

  /**
   * Registers a reader that will start at `start`. Done synchronously when a request joins, so
   * the bytes it needs are kept from then on.
   */
  claim(start: number): FillReaderClaim {
    const claim = new FillReaderClaim(this, start);
    this.claims.add(claim);
    this.context.cache.acquireReader(this.digest);
    return claim;
  }

  async readFor(
    claim: FillReaderClaim,
    position: number,
    maxLength: number,
    endExclusive: number,
  ): Promise<Buffer | null> {
    for (;;) {
      if (this.error) throw this.error;
      if (claim.isReleased) return null;
      const verified = this.state === 'verified';
      if (position >= endExclusive) {
        if (verified) return null;
      } else {
        const limit = verified ? endExclusive : Math.min(this.received, endExclusive - 1);
        if (position < limit) {
          const want = Math.min(maxLength, limit - position);
          // Memory first: a reader close behind the fill gets the very chunk that went to the
          // file, with no read back; one further behind reads the file.
          const chunk =
            this.memory.holds(position) || position >= this.diskWritten
              ? this.memory.read(position, want)
              : await claim.track(this.readDisk(position, Math.min(want, this.diskWritten - position)));
          claim.position = position + chunk.length;
          this.onReaderProgress();
          return chunk;
        }
      }
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  releaseClaim(claim: FillReaderClaim): void {
    if (!this.claims.delete(claim)) return;
    this.context.cache.releaseReader(this.digest);
    this.onReaderProgress();
    if (this.degraded && this.claims.size === 0 && !this.settled) {
      this.controller.abort(new BlobCacheException('FILL_ABANDONED', `${this.digest}: no reader left`));
    }
    this.closeHandleWhenUnused();
  }

  private async execute(): Promise<void> {
    const signal = this.controller.signal;
    const timer = setTimeout(() => {
      this.controller.abort(
        new BlobCacheException('FILL_TIMEOUT', `${this.digest} after ${this.context.fillTimeoutMs} ms`),
      );
    }, this.context.fillTimeoutMs);
    timer.unref();
    let body: Readable | undefined;
    const destroyBody = () => body?.destroy(signal.reason);
    try {
      const upstream = await untilAborted(this.openUpstream(signal), signal, (late) => late.body.destroy());
      body = upstream.body;
      // The body may fail (a reset upstream) while the temp file is made, before the loop below
      // listens: an 'error' with no listener would end the process. The loop still meets the error,
      // since iterating a stream that failed throws its error.
      body.on('error', () => undefined);
      signal.addEventListener('abort', destroyBody, { once: true });
      if (this.expectedSize !== undefined && upstream.size !== this.expectedSize) {
        throw new BlobCacheException(
          'SIZE_MISMATCH',
          `${this.digest}: upstream announces ${upstream.size} bytes, expected ${this.expectedSize}`,
        );
      }
      this.size = upstream.size;
      this.state = 'streaming';
      this.resolveReady(this.size);

      try {
        this.temp = await this.context.cache.createTempFile(this.digest);
        this.writer = new FileWriteBehind(this.temp.handle, {
          written: (upTo) => {
            this.hash?.written(upTo);
            this.onReaderProgress();
          },
          // A failed fill discards its temp file anyway; only a live one degrades to pass-through.
          failed: (error) => {
            if (!this.hasFailed()) this.degrade(error);
          },
        });
      } catch (error) {
        this.degrade(error);
      }
      const hash = this.context.cache.hasher.start(this.degraded ? undefined : this.temp?.handle.fd);
      this.hash = hash;
      this.hashFromMemory = !hash.followsFile;
      await this.receive(body, hash, signal);
      if (signal.aborted) throw signal.reason;
      if (this.received < this.size) {
        throw new BlobCacheException(
          'UPSTREAM_TRUNCATED',
          `${this.digest}: ${this.received} of ${this.size} bytes`,
        );
      }
      // A hash that follows the file (a worker reading it back) needs every byte on disk first:
      // this waits for the last write and the last megabyte's hashing, not for the whole blob. A
      // hash fed from memory already has every byte: the readers get their last byte without
      // waiting for the disk, which is awaited before the commit below.
      if (!this.hashFromMemory) await this.writer?.idle();
      const actual = `sha256:${await untilAborted(hash.digest(), signal)}`;
      if (!this.learn && actual !== this.digest) {
        throw new BlobCacheException(
          'DIGEST_MISMATCH',
          `upstream content for ${this.digest} hashes to ${actual}`,
        );
      }
      // Readers may take the last byte now.
      this.state = 'verified';
      this.notify();
      await this.writer?.idle();
      if (!this.degraded && this.temp) await this.commit(this.temp, actual);
      // Before the fill is detached: a request from now on finds the digest, then the file.
      this.learn?.(actual);
    } catch (error) {
      await this.fail(error, body);
    } finally {
      clearTimeout(timer);
      signal.removeEventListener('abort', destroyBody);
      // A write still running must end before the descriptor can be closed.
      await this.writer?.idle();
      // The hash worker must be done with the descriptor before it can be closed.
      await this.hash?.drop();
      await this.tempDiscarded;
      this.settled = true;
      this.context.detach(this);
      this.context.cache.unpin(this.digest);
      this.context.metrics.fillEnded();
      this.closeHandleWhenUnused();
    }
  }

  /**
   * Takes the upstream body chunk by chunk in its 'data' handler: each chunk is kept for readers,
   * queued for the disk and hashed before the next one is looked at, with no promise per chunk
   * (a 200 MB blob is ~3,000 socket reads; `for await` cost two promise hops each). The body is
   * paused only while the write-behind queue is full or a degraded fill waits for its readers.
   * Resolves at the body's end; rejects with its error, a premature close, or the first check
   * that fails.
   */
  private receive(body: Readable, hash: BlobHashJob, signal: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const done = (error?: unknown): void => {
        if (settled) return;
        settled = true;
        body.off('data', onData);
        stopWatching();
        if (error === undefined) resolve();
        else reject(error);
      };
      const resume = (): void => {
        if (!settled) body.resume();
      };
      const onData = (raw: Buffer | Uint8Array): void => {
        if (settled) return;
        try {
          take(raw);
        } catch (error) {
          done(error);
        }
      };
      const take = (raw: Buffer | Uint8Array): void => {
        const chunk: Buffer = Buffer.isBuffer(raw) ? raw : Buffer.from(raw);
        this.context.metrics.bytesFromUpstream(chunk.length);
        if (this.received + chunk.length > this.size) {
          done(
            new BlobCacheException(
              'SIZE_MISMATCH',
              `${this.digest}: upstream sent more than ${this.size} bytes`,
            ),
          );
          return;
        }
        const full = this.store(chunk);
        if (this.hashFromMemory) hash.push(chunk);
        this.received += chunk.length;
        this.notify();
        if (full) {
          body.pause();
          void full.then(() => (this.degraded ? this.waitForSpace(signal) : undefined)).then(resume, done);
        } else if (this.degraded && !this.hasSpace()) {
          body.pause();
          this.waitForSpace(signal).then(resume, done);
        }
      };
      // End, error or a close before the end (premature close) settle the loop; an abort destroys
      // the body, which lands here too.
      const stopWatching = finished(body, (error) => done(error ?? undefined));
      body.on('data', onData);
    });
  }

  /**
   * Keeps the chunk for readers and queues it for the disk. Returns a promise to wait for when the
   * write-behind queue is full (the disk is slower than upstream).
   */
  private store(chunk: Buffer): Promise<void> | undefined {
    this.memory.push(this.received, chunk);
    if (this.degraded || !this.writer) return undefined;
    this.writer.push(chunk);
    return this.writer.queuedBytes >= WRITE_BEHIND_BYTES ? this.writer.idle() : undefined;
  }

  /** Bytes in the temp file: the writer's count (none without a file). */
  private get diskWritten(): number {
    return this.writer?.written ?? 0;
  }

  /** A method, not an inline comparison: the state changes across the awaits of the writer. */
  private hasFailed(): boolean {
    return this.state === 'failed';
  }

  private async commit(temp: BlobTempFile, digest: string): Promise<void> {
    try {
      await this.context.cache.commitTempFile(temp.path, digest, this.size);
    } catch (error) {
      // The readers already have verified bytes from the open descriptor; only caching is lost.
      this.context.cache.recordWriteFailure(digest, error);
      await this.context.cache.discardTempFile(temp.path);
    }
  }

  private degrade(error: unknown): void {
    if (this.degraded) return;
    this.degraded = true;
    this.memoryStart = this.diskWritten;
    this.writer?.stop();
    this.context.cache.recordWriteFailure(this.digest, error);
    // The hash has the file's bytes up to `diskWritten`; the rest is in memory and is pushed
    // from now on (the descriptor stays open and readable: only the path goes).
    if (this.hash && !this.hashFromMemory) {
      this.hashFromMemory = true;
      for (const chunk of this.memory.from(this.diskWritten)) this.hash.push(chunk);
    }
    if (this.temp) this.tempDiscarded = this.context.cache.discardTempFile(this.temp.path);
    this.context.detach(this);
    if (this.claims.size === 0) {
      this.controller.abort(new BlobCacheException('FILL_ABANDONED', `${this.digest}: no reader left`));
    }
  }

  private async fail(error: unknown, body: Readable | undefined): Promise<void> {
    const wasStarting = this.state === 'starting';
    this.state = 'failed';
    this.context.detach(this);
    this.error =
      error instanceof BlobCacheException
        ? error
        : new BlobCacheException('UPSTREAM_FAILED', `${this.digest}: ${describe(error)}`, error);
    body?.destroy();
    this.memory.clear();
    this.writer?.stop();
    if (wasStarting) this.rejectReady(error);
    this.notify();
    this.spaceWaiter?.();
    if (this.temp && !this.degraded) this.tempDiscarded = this.context.cache.discardTempFile(this.temp.path);
    if (this.error.failure === 'FILL_ABANDONED') return;
    const log = {
      digest: this.digest,
      failure: this.error.failure,
      received: this.received,
      size: this.size,
      err: error,
    };
    if (this.error.failure === 'DIGEST_MISMATCH' || this.error.failure === 'SIZE_MISMATCH') {
      this.context.logger.error(log, 'upstream served a blob that does not match its digest or size');
    } else if (!wasStarting) {
      this.context.logger.warn(log, 'blob fill failed');
    }
  }

  private async readDisk(position: number, length: number): Promise<Buffer> {
    const buffer = Buffer.allocUnsafe(length);
    const n = this.temp ? await this.temp.handle.read(buffer, 0, length, position) : 0;
    if (n === 0)
      throw new BlobCacheException('CACHE_READ_FAILED', `${this.digest}: temp file shorter than written`);
    return buffer.subarray(0, n);
  }

  /**
   * Drops chunks no reader can need any more, and lets a paused pass-through continue. While the
   * disk works that is what is on disk (a reader joining later reads it there); once degraded,
   * what every reader has passed (nobody joins a degraded fill).
   */
  private onReaderProgress(): void {
    // On disk and passed by every reader, or on disk and more than READER_MEMORY_BYTES behind
    // the fill (a slow reader then reads the file); once degraded, passed by every reader.
    const droppable = this.degraded
      ? this.slowestPosition()
      : Math.min(this.diskWritten, Math.max(this.slowestPosition(), this.received - READER_MEMORY_BYTES));
    this.memory.dropBefore(droppable);
    if (this.spaceWaiter && this.hasSpace()) {
      const wake = this.spaceWaiter;
      this.spaceWaiter = undefined;
      wake();
    }
  }

  private slowestPosition(): number {
    let slowest = Number.POSITIVE_INFINITY;
    for (const claim of this.claims) slowest = Math.min(slowest, claim.position);
    return slowest;
  }

  private hasSpace(): boolean {
    if (this.claims.size === 0) return true;
    const buffered = this.received - Math.max(this.slowestPosition(), this.memoryStart);
    return buffered <= this.context.passThroughBufferBytes;
  }

  private async waitForSpace(signal: AbortSignal): Promise<void> {
    while (!this.hasSpace() && !signal.aborted) {
      await new Promise<void>((resolve) => {
        const wake = () => {
          signal.removeEventListener('abort', wake);
          resolve();
        };
        this.spaceWaiter = wake;
        signal.addEventListener('abort', wake, { once: true });
      });
    }
    if (signal.aborted) throw signal.reason;
  }

  private notify(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }

  private closeHandleWhenUnused(): void {
    if (!this.settled || this.claims.size > 0 || !this.temp || this.handleClosed) return;
    this.handleClosed = true;
    this.temp.handle.close().catch((error: unknown) => {
      this.context.logger.warn({ digest: this.digest, err: error }, 'could not close a blob cache temp file');
    });
  }
}
