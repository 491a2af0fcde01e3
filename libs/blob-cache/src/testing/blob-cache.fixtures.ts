import { createHash } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BlobCacheLogger } from '../blob-cache-logger.interface';
import { BlobCacheMetrics } from '../blob-cache-metrics.interface';
import { BlobCacheOptions } from '../blob-cache.options';
import { BlobCacheService } from '../blob-cache.service';
import { BlobFileHandle, BlobFileSystem } from '../blob-file-system.service';
import { BlobFillCoordinator } from '../blob-fill.coordinator';
import { OpenUpstreamBlob } from '../blob-fill.operation';
import { BlobIndexStore } from '../blob-index-store.interface';
import { InMemoryBlobIndexStore } from '../in-memory-blob-index.store';

export function sha256(data: Buffer): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** Deterministic pseudo-random bytes, so failures reproduce. */
export function blobOf(size: number, seed = 1): Buffer {
  const out = Buffer.allocUnsafe(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

export class RecordingLogger implements BlobCacheLogger {
  readonly lines: Array<{ level: 'warn' | 'error'; obj: Record<string, unknown>; msg: string }> = [];
  warn(obj: Record<string, unknown>, msg: string): void {
    this.lines.push({ level: 'warn', obj, msg });
  }
  error(obj: Record<string, unknown>, msg: string): void {
    this.lines.push({ level: 'error', obj, msg });
  }
}

export class CountingMetrics implements BlobCacheMetrics {
  readonly counts = {
    hit: 0,
    miss: 0,
    bytesFromCache: 0,
    bytesFromUpstream: 0,
    fillsInFlight: 0,
    evictedBlobs: 0,
    evictedBytes: 0,
    writeFailures: 0,
  };
  hit(): void {
    this.counts.hit++;
  }
  miss(): void {
    this.counts.miss++;
  }
  bytesFromCache(bytes: number): void {
    this.counts.bytesFromCache += bytes;
  }
  bytesFromUpstream(bytes: number): void {
    this.counts.bytesFromUpstream += bytes;
  }
  fillStarted(): void {
    this.counts.fillsInFlight++;
  }
  fillEnded(): void {
    this.counts.fillsInFlight--;
  }
  evicted(blobs: number, bytes: number): void {
    this.counts.evictedBlobs += blobs;
    this.counts.evictedBytes += bytes;
  }
  writeFailed(): void {
    this.counts.writeFailures++;
  }
}

export interface FakeUpstreamOptions {
  chunkBytes?: number;
  /** Content length announced, when it should differ from the data's. */
  announcedSize?: number;
  /** End the body cleanly after this many bytes. */
  truncateAt?: number;
  /** Destroy the body with an error once this many bytes were sent. */
  failAt?: number;
  /** Stop sending (without ending) once this many bytes were sent. */
  stallAt?: number;
  /** Hold the body at `atByte` until `until` resolves. */
  gate?: { atByte: number; until: Promise<unknown> };
}

/**
 * An upstream that sends its body one chunk per event-loop turn (so readers can run between
 * chunks) and records how it was used.
 */
export class FakeUpstream {
  opens = 0;
  sent = 0;
  ended = false;
  readonly signals: AbortSignal[] = [];
  private reached = new Set<number>();

  constructor(
    readonly data: Buffer,
    private readonly options: FakeUpstreamOptions = {},
  ) {}

  readonly open: OpenUpstreamBlob = async (signal) => {
    this.opens++;
    this.signals.push(signal);
    return { status: 200, body: this.body(), size: this.options.announcedSize ?? this.data.length };
  };

  hasReached(byte: number): boolean {
    return this.reached.has(byte);
  }

  private body(): Readable {
    const { chunkBytes = 64 * 1024, truncateAt, failAt, stallAt, gate } = this.options;
    const stop = truncateAt ?? this.data.length;
    let position = 0;
    const body = new Readable({
      highWaterMark: chunkBytes,
      read: () => {
        setImmediate(() => {
          const send = () => {
            if (body.destroyed) return;
            if (failAt !== undefined && position >= failAt) {
              body.destroy(Object.assign(new Error('upstream connection reset'), { code: 'ECONNRESET' }));
              return;
            }
            if (stallAt !== undefined && position >= stallAt) return;
            if (position >= stop) {
              this.ended = true;
              body.push(null);
              return;
            }
            const limit = gate && position < gate.atByte ? gate.atByte : stop;
            const chunk = this.data.subarray(
              position,
              Math.min(position + chunkBytes, limit, failAt ?? stop),
            );
            position += chunk.length;
            this.sent = position;
            body.push(chunk);
          };
          if (gate && position === gate.atByte && !this.reached.has(gate.atByte)) {
            this.reached.add(gate.atByte);
            void gate.until.then(send);
          } else send();
        });
      },
    });
    return body;
  }
}

/** Consumes a stream, hashing it; never holds the whole body. */
export async function digestOf(stream: Readable): Promise<{ digest: string; bytes: number }> {
  const hash = createHash('sha256');
  let bytes = 0;
  await pipeline(
    stream,
    new Writable({
      write(chunk: Buffer, _enc, cb) {
        hash.update(chunk);
        bytes += chunk.length;
        cb();
      },
    }),
  );
  return { digest: `sha256:${hash.digest('hex')}`, bytes };
}

export async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Resolves with the error the stream is destroyed with; rejects if it ends normally instead. */
export function failureOf(stream: Readable): Promise<Error> {
  return new Promise((resolve, reject) => {
    stream.on('data', () => undefined);
    stream.on('end', () => reject(new Error('stream ended normally')));
    stream.on('error', resolve);
  });
}

/** Files (recursively) under a directory, relative paths. */
export async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) out.push(join(entry.parentPath ?? entry.path, entry.name).slice(dir.length + 1));
  }
  return out.sort();
}

/** Fails writes with `code` once `afterBytes` bytes were written in total; can also refuse to create files. */
export class FailingBlobFileSystem extends BlobFileSystem {
  written = 0;

  constructor(private readonly failure: { code: string; afterBytes?: number; onCreate?: boolean }) {
    super();
  }

  override async createExclusive(path: string): Promise<BlobFileHandle> {
    if (this.failure.onCreate) throw errnoError(this.failure.code, `open '${path}'`);
    const inner = await super.createExclusive(path);
    const limit = this.failure.afterBytes ?? Number.POSITIVE_INFINITY;
    const write = async (buffer: Buffer, position: number): Promise<void> => {
      const room = limit - this.written;
      if (room < buffer.length) {
        // Like a real full disk: part of the chunk may land before the error.
        if (room > 0) await inner.write(buffer.subarray(0, room), position);
        this.written += Math.max(room, 0);
        throw errnoError(this.failure.code, 'write');
      }
      await inner.write(buffer, position);
      this.written += buffer.length;
    };
    return {
      read: (buffer, offset, length, position) => inner.read(buffer, offset, length, position),
      close: () => inner.close(),
      write,
      // The real descriptor: fills hash through the worker thread as in production.
      fd: inner.fd,
    };
  }
}

function errnoError(code: string, syscall: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: ${syscall}`), { code, syscall });
}

export interface CacheUnderTest {
  dir: string;
  cache: BlobCacheService;
  coordinator: BlobFillCoordinator;
  store: InMemoryBlobIndexStore;
  logger: RecordingLogger;
  metrics: CountingMetrics;
}

export async function makeTempDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'gatehouse-blob-cache-'));
}

export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

export async function createCache(
  dir: string,
  options: Partial<BlobCacheOptions> = {},
  deps: { store?: BlobIndexStore; fileSystem?: BlobFileSystem } = {},
): Promise<CacheUnderTest> {
  const store = (deps.store as InMemoryBlobIndexStore | undefined) ?? new InMemoryBlobIndexStore();
  const logger = new RecordingLogger();
  const metrics = new CountingMetrics();
  const cache = new BlobCacheService(
    { cacheDir: dir, maxBytes: 0, fillTimeoutMs: 30_000, flushIntervalMs: 0, ...options },
    store,
    logger,
    metrics,
    deps.fileSystem ?? new BlobFileSystem(),
  );
  await cache.init();
  const coordinator = new BlobFillCoordinator(cache, logger, metrics);
  return { dir, cache, coordinator, store, logger, metrics };
}
