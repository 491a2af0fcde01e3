import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { BlobCacheException } from '@gatehouse/blob-cache';
import type {
  BlobLease,
  BlobOpenOptions,
  BlobOpenResult,
  BlobStore,
  IdentityOpenOptions,
  OpenUpstreamBlob,
} from '@gatehouse/blob-cache';

export interface FakeBlobStoreCall {
  method: 'open' | 'openByIdentity';
  /** The digest (open) or the identity (openByIdentity). */
  key: string;
  expectedSize?: number;
  range?: { start: number; end: number };
  joinOnly?: boolean;
}

interface RunningFill {
  size: number;
  data: Promise<Buffer>;
}

/**
 * The one content store in memory, for unit specs of its callers: committed content by digest,
 * one fill per digest or identity (a joiner resolves at once and its body waits for the fill),
 * digests checked before commit, an identity's digest handed to `learnt`. No disk, no hashing
 * worker; every call is recorded.
 */
export class FakeBlobStore implements BlobStore {
  readonly committed = new Map<string, Buffer>();
  readonly calls: FakeBlobStoreCall[] = [];
  upstreamOpens = 0;
  private readonly running = new Map<string, RunningFill>();

  stat(digest: string): number | null {
    return this.committed.get(digest)?.length ?? null;
  }

  /** Whether a fill of this digest or identity is running. */
  isFilling(key: string): boolean {
    return this.running.has(key);
  }

  async open(
    digest: string,
    expectedSize: number | undefined,
    openUpstream: OpenUpstreamBlob,
    options: BlobOpenOptions = {},
  ): Promise<BlobOpenResult> {
    this.calls.push({ method: 'open', key: digest, expectedSize, range: options.range });
    const hit = this.committed.get(digest);
    if (hit) return { source: 'hit', size: hit.length, body: bodyOf(Promise.resolve(hit), options.range) };
    const joined = this.running.get(digest);
    if (joined) return { source: 'fill-joined', size: joined.size, body: bodyOf(joined.data, options.range) };
    const fill = await this.start(digest, openUpstream, (data) => {
      if (`sha256:${sha256(data)}` !== digest) throw new BlobCacheException('DIGEST_MISMATCH', digest);
      if (expectedSize !== undefined && data.length !== expectedSize)
        throw new BlobCacheException('SIZE_MISMATCH', digest);
      return digest;
    });
    return { source: 'fill-started', size: fill.size, body: bodyOf(fill.data, options.range) };
  }

  async openByIdentity(
    identity: string,
    openUpstream: OpenUpstreamBlob,
    options: IdentityOpenOptions,
  ): Promise<BlobOpenResult | null> {
    this.calls.push({
      method: 'openByIdentity',
      key: identity,
      range: options.range,
      joinOnly: options.joinOnly,
    });
    const joined = this.running.get(identity);
    if (joined) return { source: 'fill-joined', size: joined.size, body: bodyOf(joined.data, options.range) };
    if (options.joinOnly) return null;
    const fill = await this.start(identity, openUpstream, (data) => {
      const digest = `sha256:${sha256(data)}`;
      options.learnt(digest);
      return digest;
    });
    return { source: 'fill-started', size: fill.size, body: bodyOf(fill.data, options.range) };
  }

  /** No file to hand over: the fake has no disk. */
  async lease(): Promise<BlobLease | null> {
    return null;
  }

  async whenIdle(): Promise<void> {
    while (this.running.size > 0) await Promise.allSettled([...this.running.values()].map((f) => f.data));
  }

  private async start(
    key: string,
    openUpstream: OpenUpstreamBlob,
    verify: (data: Buffer) => string,
  ): Promise<RunningFill> {
    this.upstreamOpens++;
    const up = await openUpstream(new AbortController().signal);
    const data = (async () => {
      const chunks: Buffer[] = [];
      for await (const chunk of up.body) chunks.push(Buffer.from(chunk as Uint8Array));
      const whole = Buffer.concat(chunks);
      if (whole.length !== up.size) throw new Error(`UPSTREAM_TRUNCATED: ${whole.length} of ${up.size}`);
      this.committed.set(verify(whole), whole);
      return whole;
    })().finally(() => this.running.delete(key));
    data.catch(() => undefined);
    const fill = { size: up.size, data };
    this.running.set(key, fill);
    return fill;
  }
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** A body that yields once the fill has the bytes (a real fill streams them as they come). */
function bodyOf(data: Promise<Buffer>, range?: { start: number; end: number }): Readable {
  return Readable.from(
    (async function* () {
      const whole = await data;
      yield range ? whole.subarray(range.start, range.end + 1) : whole;
    })(),
  );
}
