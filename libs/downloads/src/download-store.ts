import { Readable } from 'node:stream';
import { LRUCache } from 'lru-cache';
import {
  BlobCacheException,
  BlobOpenResult,
  BlobStore,
  OpenUpstreamBlob,
  parseRangeHeader,
} from '@gatehouse/blob-cache';
import { OciError } from '@gatehouse/oci';
import type { UpstreamDownload } from '@gatehouse/upstream';

/** What names a file for the cache: the same file for every member who may download it. */
export interface DownloadKey {
  kind: 'releases' | 'packages';
  /** Lower case, as the catalog and the entitlements name it. */
  owner: string;
  /** The repository (releases) or the package (packages), lower case. */
  name: string;
  /** The release tag or package version as the upstream states it. */
  version: string;
  filename: string;
}

/** One file to serve: what the metadata says of it, and how to fetch it upstream. */
export interface DownloadObject {
  key: DownloadKey;
  /**
   * What tells this upload of the file from a replaced one (the attachment uuid and size): a
   * digest learnt for another revision of the same key is not used.
   */
  revision: string;
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

interface Learnt {
  revision: string;
  sha256: string;
}

const FROM_STORE = { hit: 'hit', 'fill-started': 'miss', 'fill-joined': 'joined' } as const;

/**
 * Download bytes through the one content store (BlobStore): the same content-addressed files, LRU
 * cap, single-flight fills and tail-following readers as image layers. A file whose sha256 is
 * known is opened by digest. A release asset's sha256 is not in Forgejo's metadata: its first
 * whole-file request starts the one fill of its identity (key and revision), which every later
 * request joins and reads at its own pace while it fills; the store commits it under the digest
 * it hashed to and tells this class, which from then on opens it by digest. A range of a file
 * whose digest is not known yet joins a running fill, or else is passed through from upstream
 * (`bypass`).
 */
export class DownloadStore {
  /** Key → the digest learnt for one revision of it (bounded, LRU; lost on restart, re-learnt by one fetch). */
  private readonly learnt: LRUCache<string, Learnt>;

  constructor(
    private readonly store: BlobStore,
    maxLearnt = 100_000,
  ) {
    this.learnt = new LRUCache<string, Learnt>({ max: maxLearnt });
  }

  knownSha256(object: Pick<DownloadObject, 'key' | 'revision' | 'sha256'>): string | null {
    if (object.sha256) return object.sha256;
    const learnt = this.learnt.get(keyString(object.key));
    return learnt && learnt.revision === object.revision ? learnt.sha256 : null;
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
    const whole = wholeFile(object);
    const sha256 = this.knownSha256(object);
    const key = keyString(object.key);
    if (sha256 && object.size > 0) {
      const opened = await this.store.open(`sha256:${sha256}`, object.size, whole, { range });
      // The upstream file no longer has the learnt digest (replaced in place): learn it afresh.
      if (!object.sha256) opened.body.once('error', (error) => this.forgetOnMismatch(key, sha256, error));
      return reply(opened, range, sha256);
    }
    const identity = `${key}#${object.revision}`;
    const learnt = (digest: string) =>
      this.learnt.set(key, { revision: object.revision, sha256: digest.slice('sha256:'.length) });
    if (range) {
      const joined = await this.store.openByIdentity(identity, whole, { range, learnt, joinOnly: true });
      if (joined) return reply(joined, range, null);
      const up = await object.open(`bytes=${range.start}-${range.end}`, signal);
      if (!up) throw unknownUpstream();
      if (up.status === 206) {
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
      // An upstream that ignored Range: its whole answer is not wasted, it starts the fill.
      up.body.destroy();
    }
    const opened = await this.store.openByIdentity(identity, whole, { range, learnt });
    return reply(opened!, range, null);
  }

  private forgetOnMismatch(key: string, sha256: string, error: unknown): void {
    const mismatch =
      error instanceof BlobCacheException &&
      (error.failure === 'DIGEST_MISMATCH' || error.failure === 'SIZE_MISMATCH');
    if (mismatch && this.learnt.get(key)?.sha256 === sha256) this.learnt.delete(key);
  }
}

/** One string per key, unambiguous whatever the parts hold. */
function keyString(key: DownloadKey): string {
  return JSON.stringify([key.kind, key.owner, key.name, key.version, key.filename]);
}

function unknownUpstream(): OciError {
  return new OciError('NAME_UNKNOWN', { reason: 'download_unknown_upstream' });
}

/** The whole file from upstream, for a fill (which runs on its own signal, not the client's). */
function wholeFile(object: DownloadObject): OpenUpstreamBlob {
  return async (signal) => {
    const up = await object.open(undefined, signal);
    if (!up) throw unknownUpstream();
    return { status: 200, body: up.body, size: up.size ?? object.size };
  };
}

function reply(
  opened: BlobOpenResult,
  range: { start: number; end: number } | undefined,
  sha256: string | null,
): DownloadBody {
  const start = range?.start ?? 0;
  const end = range?.end ?? opened.size - 1;
  return {
    source: FROM_STORE[opened.source],
    status: range ? 206 : 200,
    size: opened.size,
    length: end - start + 1,
    contentRange: range ? `bytes ${start}-${end}/${opened.size}` : undefined,
    sha256,
    body: opened.body,
  };
}
