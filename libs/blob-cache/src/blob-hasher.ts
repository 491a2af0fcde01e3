import { createHash, Hash } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import { BLOB_HASH_WORKER_SOURCE } from './blob-hash.worker-source';

/**
 * The SHA-256 of one blob as it is received. Two ways to feed it, told by `followsFile`:
 *  - true: the bytes are hashed from the temp file the caller is writing (a worker thread reads
 *    them back from the page cache): the caller reports each write with `written(upTo)` and never
 *    hands over a chunk, so the event loop does no hashing and no copying. If the file is given
 *    up (disk failure), the caller calls `written` one last time and then `push`es every later
 *    byte, in order.
 *  - false: the caller `push`es every byte, in order (hashed on the event loop).
 * `digest()` may only be called once everything was reported; `drop()` ends a job without one.
 * Both resolve only once the job no longer reads the caller's descriptor, so the caller may close
 * it afterwards and not before.
 */
export interface BlobHashJob {
  readonly followsFile: boolean;
  written(upTo: number): void;
  push(chunk: Buffer): void;
  /** Lowercase hex; rejects when the file could not be read back. */
  digest(): Promise<string>;
  drop(): Promise<void>;
}

/** Starts hash jobs. `fd` is the open temp file being written, or undefined when there is none. */
export abstract class BlobHasher {
  abstract start(fd: number | undefined): BlobHashJob;
  /** Stops any worker thread (shutdown); later jobs hash on the event loop. */
  abstract close(): Promise<void>;
}

/** `threads` worker threads (BlobHashWorkerPool), or hashing on the event loop for 0. */
export function createBlobHasher(threads: number): BlobHasher {
  return threads > 0 ? new BlobHashWorkerPool(threads) : new InlineBlobHasher();
}

/** Hashes pushed chunks on the calling thread. */
export class InlineBlobHasher extends BlobHasher {
  start(): BlobHashJob {
    return new InlineHashJob();
  }

  async close(): Promise<void> {}
}

class InlineHashJob implements BlobHashJob {
  readonly followsFile = false;
  private readonly hash: Hash = createHash('sha256');

  written(): void {}

  push(chunk: Buffer): void {
    this.hash.update(chunk);
  }

  async digest(): Promise<string> {
    return this.hash.digest('hex');
  }

  async drop(): Promise<void> {}
}

interface Pending {
  resolve: (hex: string) => void;
  reject: (error: Error) => void;
}

/**
 * Hash worker threads, started on first use: each job belongs to one worker (round robin), which
 * reads the job's bytes back from its temp file. A worker that dies fails its jobs (their fills
 * fail like any other; nothing unverified is released) and is replaced by the next job.
 */
export class BlobHashWorkerPool extends BlobHasher {
  private readonly workers: Array<Worker | undefined>;
  private readonly pending = new Map<number, { worker: Worker; answer: Pending }>();
  private nextId = 1;
  private nextWorker = 0;
  private closed = false;
  private readonly inline = new InlineBlobHasher();

  constructor(threads: number) {
    super();
    this.workers = new Array<Worker | undefined>(Math.max(1, threads)).fill(undefined);
  }

  start(fd: number | undefined): BlobHashJob {
    if (fd === undefined || this.closed) return this.inline.start();
    const slot = this.nextWorker++ % this.workers.length;
    const worker = this.workers[slot] ?? this.spawn(slot);
    return new WorkerHashJob(worker, this.nextId++, fd, this.pending);
  }

  async close(): Promise<void> {
    this.closed = true;
    const workers = this.workers.splice(0).filter((w): w is Worker => w !== undefined);
    await Promise.all(workers.map((w) => w.terminate()));
  }

  private spawn(slot: number): Worker {
    const worker = new Worker(BLOB_HASH_WORKER_SOURCE, { eval: true });
    // Only jobs keep it busy; an idle pool must not keep the process alive.
    worker.unref();
    worker.on('message', (m: { id: number; hex?: string; error?: string; dropped?: boolean }) => {
      const entry = this.pending.get(m.id);
      if (!entry) return;
      this.pending.delete(m.id);
      if (m.hex !== undefined || m.dropped) entry.answer.resolve(m.hex ?? '');
      else entry.answer.reject(new Error(`hashing the temp file failed: ${m.error}`));
    });
    const lost = (why: string) => {
      if (this.workers[slot] === worker) this.workers[slot] = undefined;
      for (const [id, entry] of this.pending) {
        if (entry.worker !== worker) continue;
        this.pending.delete(id);
        entry.answer.reject(new Error(`the hash worker thread ${why}`));
      }
    };
    worker.on('error', (error) => lost(`failed: ${error.message}`));
    worker.on('exit', (code) => lost(`exited with code ${code}`));
    this.workers[slot] = worker;
    return worker;
  }
}

const REPORT_STEP_BYTES = 1024 * 1024;

class WorkerHashJob implements BlobHashJob {
  readonly followsFile = true;
  private reported = 0;
  private posted = 0;
  private finished: Promise<string> | undefined;

  constructor(
    private readonly worker: Worker,
    private readonly id: number,
    fd: number,
    private readonly pending: Map<number, { worker: Worker; answer: Pending }>,
  ) {
    worker.postMessage({ op: 'start', id, fd });
  }

  written(upTo: number): void {
    if (upTo <= this.reported || this.finished) return;
    this.reported = upTo;
    // One message per megabyte written at most: a message costs the event loop more than the
    // worker's read of 64 KiB. digest() and push() send what is still unreported.
    if (upTo - this.posted >= REPORT_STEP_BYTES) this.post();
  }

  push(chunk: Buffer): void {
    if (this.finished) return;
    this.post();
    // A copy: the caller still serves this chunk to its readers.
    this.worker.postMessage({ op: 'bytes', id: this.id, chunk });
  }

  digest(): Promise<string> {
    return this.finish('digest');
  }

  async drop(): Promise<void> {
    await this.finish('drop').catch(() => undefined);
  }

  private post(): void {
    if (this.reported <= this.posted) return;
    this.posted = this.reported;
    this.worker.postMessage({ op: 'file', id: this.id, upTo: this.reported });
  }

  private finish(op: 'digest' | 'drop'): Promise<string> {
    if (op === 'digest' && !this.finished) this.post();
    this.finished ??= new Promise<string>((resolve, reject) => {
      // Node sets threadId to -1 once a worker has exited: nothing would ever answer.
      if (this.worker.threadId === -1) return reject(new Error('the hash worker thread is gone'));
      // While a job waits for its answer the worker must keep the process alive.
      this.worker.ref();
      const settle = () => {
        if (![...this.pending.values()].some((p) => p.worker === this.worker)) this.worker.unref();
      };
      this.pending.set(this.id, {
        worker: this.worker,
        answer: {
          resolve: (hex) => {
            settle();
            resolve(hex);
          },
          reject: (error) => {
            settle();
            reject(error);
          },
        },
      });
      this.worker.postMessage({ op, id: this.id });
    });
    return this.finished;
  }
}
