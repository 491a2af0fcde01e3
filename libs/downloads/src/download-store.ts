import { createHash } from 'node:crypto';
import { Readable, Transform, TransformCallback } from 'node:stream';
import {
  BlobCacheService,
  BlobFillCoordinator,
  FileWriteBehind,
  parseRangeHeader,
} from '@gatehouse/blob-cache';
import { OciError } from '@gatehouse/oci';
import type { UpstreamDownload } from '@gatehouse/upstream';

const WRITE_AHEAD_BYTES = 8 * 1024 * 1024;

/** One file to serve: what the metadata says of it, and how to fetch it upstream. */
export interface DownloadObject {
  /** Stable identity of the upstream object: the attachment uuid, or the package file's sha256. */
  identity: string;
  /** sha256 hex when the upstream states it (generic packages); else learnt from the first fetch. */
  sha256: string | null;
  size: number;
  open(range: string | undefined, signal: AbortSignal): Promise<UpstreamDownload | null>;
}

export type DownloadSource = 'hit' | 'miss' | 'joined' | 'bypass';

export interface DownloadBody {
  source: DownloadSource;
  status: 200 | 206;
  /** The whole file. */
  size: number;
  /** Bytes in `body`. */
  length: number;
  contentRange?: string;
  /** sha256 hex of the whole file when known (the ETag). */
  sha256: string | null;
  body: Readable;
}

/**
 * Download bytes through the blob cache's public API: the same content-addressed store, LRU
 * cap and single-flight fills (BlobFillCoordinator) as image layers. A file whose sha256 is
 * known is opened by digest (hit, or one fill streamed to the first client and joined by the
 * others). A release asset's sha256 is not in Forgejo's metadata: its first whole-file fetch is
 * hashed as it streams to the client into a cache temp file and committed under the digest it
 * turned out to have; from then on the asset is served by digest. A range of a file whose digest
 * is not known yet is passed through from upstream (`bypass`).
 */
export class DownloadStore {
  /** Upstream identity → sha256 hex, learnt from fetches (bounded; lost on restart, re-learnt by one fetch). */
  private readonly learnt = new Map<string, string>();
  /** Identities whose learning fetch is running: a second whole-file request waits for it, then reads the cache. */
  private readonly learning = new Map<string, Promise<void>>();

  constructor(
    private readonly fills: BlobFillCoordinator,
    private readonly cache: BlobCacheService,
    private readonly maxLearnt = 100_000,
  ) {}

  knownSha256(object: Pick<DownloadObject, 'identity' | 'sha256'>): string | null {
    return object.sha256 ?? this.learnt.get(object.identity) ?? null;
  }

  async open(
    object: DownloadObject,
    rangeHeader: string | undefined,
    signal: AbortSignal,
  ): Promise<DownloadBody> {
    const parsed = parseRangeHeader(rangeHeader, object.size);
    if (parsed.kind === 'unsatisfiable') {
      throw new OciError('RANGE_INVALID', {
        headers: { 'Content-Range': `bytes */${object.size}` },
        reason: 'range_not_satisfiable',
      });
    }
    const range = parsed.kind === 'range' ? { start: parsed.start, end: parsed.end } : undefined;
    const running = this.learning.get(object.identity);
    if (running && !range && !this.knownSha256(object)) await running;
    const sha256 = this.knownSha256(object);
    if (sha256 && object.size > 0) {
      const opened = await this.fills.open(
        `sha256:${sha256}`,
        object.size,
        async (fillSignal) => {
          const up = await object.open(undefined, fillSignal);
          if (!up) throw new OciError('NAME_UNKNOWN', { reason: 'download_unknown_upstream' });
          return { status: 200, body: up.body, size: up.size ?? object.size };
        },
        { range },
      );
      const start = range?.start ?? 0;
      const end = range?.end ?? opened.size - 1;
      return {
        source: opened.source === 'hit' ? 'hit' : opened.source === 'fill-started' ? 'miss' : 'joined',
        status: range ? 206 : 200,
        size: opened.size,
        length: end - start + 1,
        contentRange: range ? `bytes ${start}-${end}/${opened.size}` : undefined,
        sha256,
        body: opened.body,
      };
    }
    let settle = () => undefined as void;
    if (!range && !this.learning.has(object.identity)) {
      const gate = new Promise<void>((resolve) => (settle = resolve));
      this.learning.set(object.identity, gate);
      const done = settle;
      settle = () => {
        if (this.learning.get(object.identity) === gate) this.learning.delete(object.identity);
        done();
      };
    }
    let up: UpstreamDownload | null;
    try {
      up = await object.open(range ? `bytes=${range.start}-${range.end}` : undefined, signal);
    } catch (err) {
      settle();
      throw err;
    }
    if (!up) {
      settle();
      throw new OciError('NAME_UNKNOWN', { reason: 'download_unknown_upstream' });
    }
    if (range && up.status === 206) {
      settle();
      return {
        source: 'bypass',
        status: 206,
        size: object.size,
        length: range.end - range.start + 1,
        contentRange: `bytes ${range.start}-${range.end}/${object.size}`,
        sha256: null,
        body: up.body,
      };
    }
    // The whole file (asked for, or an upstream that ignored Range): hashed and kept as it streams.
    const size = up.size ?? object.size;
    const learning = await this.learn(object.identity, size, up.body, settle);
    if (range) {
      return {
        source: 'bypass',
        status: 206,
        size,
        length: range.end - range.start + 1,
        contentRange: `bytes ${range.start}-${range.end}/${size}`,
        sha256: null,
        body: learning.pipe(new Slice(range.start, range.end)),
      };
    }
    return { source: 'miss', status: 200, size, length: size, sha256: null, body: learning };
  }

  /** Streams `body` on while writing it to a cache temp file; commits it under its sha256 at the end. */
  private async learn(identity: string, size: number, body: Readable, settle: () => void): Promise<Readable> {
    const placeholder = `sha256:${createHash('sha256').update(`download:${identity}`).digest('hex')}`;
    let temp: Awaited<ReturnType<BlobCacheService['createTempFile']>> | null = null;
    try {
      temp = await this.cache.createTempFile(placeholder);
    } catch (error) {
      this.cache.recordWriteFailure(placeholder, error);
    }
    // Hashed from the temp file by a worker thread as the writes land (or pushed, without a file).
    const hash = this.cache.hasher.start(temp?.handle.fd);
    let written = 0;
    let failed = temp === null;
    const cache = this.cache;
    const learnt = this.learnt;
    const max = this.maxLearnt;
    let committed = false;
    /** Called with the last chunk held back, so no client sees the end before the file is in the cache. */
    const commit = async (): Promise<void> => {
      committed = true;
      try {
        await keep();
      } finally {
        settle();
      }
    };
    const keep = async (): Promise<void> => {
      if (!temp) return void (await hash.drop());
      if (failed || written !== size) {
        await hash.drop();
        await temp.handle.close().catch(() => undefined);
        return cache.discardTempFile(temp.path);
      }
      let hex: string;
      try {
        hex = await hash.digest();
      } catch (error) {
        cache.recordWriteFailure(placeholder, error);
        await temp.handle.close().catch(() => undefined);
        return cache.discardTempFile(temp.path);
      }
      await temp.handle.close().catch(() => undefined);
      try {
        await cache.commitTempFile(temp.path, `sha256:${hex}`, written);
        if (learnt.size >= max) learnt.delete(learnt.keys().next().value!);
        learnt.set(identity, hex);
      } catch (error) {
        cache.recordWriteFailure(`sha256:${hex}`, error);
        await cache.discardTempFile(temp.path);
      }
    };
    // Write-behind: bytes go on to the client while the file writes run (batched, FileWriteBehind),
    // at most WRITE_AHEAD_BYTES queued; the last chunk waits for the file to be committed.
    const writer = temp
      ? new FileWriteBehind(temp.handle, {
          written: (upTo) => hash.written(upTo),
          failed: (error) => {
            failed = true;
            cache.recordWriteFailure(placeholder, error);
          },
        })
      : null;
    const idle = (): Promise<void> => writer?.idle() ?? Promise.resolve();
    const tee = new Transform({
      transform(chunk: Buffer, _enc, done: TransformCallback) {
        if (written + chunk.length > size)
          return done(new Error(`the upstream sent more than ${size} bytes`));
        if (!hash.followsFile) hash.push(chunk);
        written += chunk.length;
        if (!failed) writer?.push(chunk);
        if (written === size) {
          idle()
            .then(commit)
            .then(
              () => done(null, chunk),
              (error: Error) => done(error),
            );
        } else if (writer && writer.queuedBytes > WRITE_AHEAD_BYTES) {
          void idle().then(() => done(null, chunk));
        } else {
          done(null, chunk);
        }
      },
      flush(done: TransformCallback) {
        if (written === size) return done();
        void idle()
          .then(() => (committed ? undefined : commit()))
          .finally(() => done(new Error(`the upstream sent ${written} of ${size} bytes`)));
      },
    });
    tee.once('close', () => {
      if (!committed) settle();
      if (!committed && temp) {
        failed = true;
        writer?.stop();
        void idle()
          .then(() => hash.drop())
          .then(() => temp!.handle.close())
          .catch(() => undefined)
          .then(() => cache.discardTempFile(temp!.path));
      }
    });
    body.once('error', (e) => tee.destroy(e));
    tee.once('close', () => {
      if (!body.destroyed) body.destroy();
    });
    return body.pipe(tee);
  }
}

/** Bytes start..end (inclusive) of a whole-file stream. */
class Slice extends Transform {
  private at = 0;
  constructor(
    private readonly first: number,
    private readonly last: number,
  ) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    const from = Math.max(0, this.first - this.at);
    const to = Math.min(chunk.length, this.last + 1 - this.at);
    this.at += chunk.length;
    if (to > from) this.push(chunk.subarray(from, to));
    done();
  }
}
