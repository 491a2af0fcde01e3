import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { BlobCacheService, BlobFillCoordinator, InMemoryBlobIndexStore } from '@gatehouse/blob-cache';
import { computeDigest, OciError, UpstreamBlob } from '@gatehouse/oci';
import { BlobSource } from './blob.source';
import { UpstreamSource } from './upstream-source.interface';

const sha256 = (b: Buffer) => computeDigest(b, 'sha256');
const sha512 = (b: Buffer) => computeDigest(b, 'sha512');

async function collect(body: Readable | undefined): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of body!) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** Blobs in memory; counts GETs and honours a requested range (sha512 pass-through). */
class MemoryUpstream implements UpstreamSource {
  blobs = new Map<string, Buffer>();
  gets = 0;
  async getBlob(
    _name: string,
    digest: string,
    options: { range?: { start: number; end?: number } },
  ): Promise<UpstreamBlob | null> {
    this.gets++;
    const data = this.blobs.get(digest);
    if (!data) return null;
    if (options.range) {
      const end = options.range.end ?? data.length - 1;
      const part = data.subarray(options.range.start, end + 1);
      return {
        status: 206,
        body: Readable.from([part]),
        size: part.length,
        contentRange: `bytes ${options.range.start}-${end}/${data.length}`,
      };
    }
    return { status: 200, body: Readable.from([data]), size: data.length };
  }
  async headBlob(_name: string, digest: string): Promise<{ size: number } | null> {
    const data = this.blobs.get(digest);
    return data ? { size: data.length } : null;
  }
  async getManifest(): Promise<null> {
    return null;
  }
  async headManifest(): Promise<null> {
    return null;
  }
  async listTags(): Promise<null> {
    return null;
  }
}

describe('BlobSource', () => {
  let dir: string;
  let cache: BlobCacheService;
  let fills: BlobFillCoordinator;
  let upstream: MemoryUpstream;
  let source: BlobSource;
  const signal = new AbortController().signal;
  const data = Buffer.from('layer bytes '.repeat(1000));
  const digest = sha256(data);

  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'gatehouse-blob-source-'));
    const logger = { warn: () => undefined, error: () => undefined };
    cache = new BlobCacheService(
      { cacheDir: dir, maxBytes: 0, fillTimeoutMs: 10_000, flushIntervalMs: 0 },
      new InMemoryBlobIndexStore(),
      logger,
    );
    await cache.init();
    fills = new BlobFillCoordinator(cache, logger);
    upstream = new MemoryUpstream();
    upstream.blobs.set(digest, data);
    source = new BlobSource(fills, upstream);
  });

  afterEach(async () => {
    await fills.whenIdle();
    await cache.close();
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('fills on a miss, lets a concurrent request join the same fill, then serves a hit', async () => {
    const [first, second] = await Promise.all([
      source.open('acme/app', digest, { declaredSize: data.length, signal }),
      source.open('acme/app', digest, { declaredSize: data.length, signal }),
    ]);
    expect([first.source, second.source]).toEqual(['miss', 'joined']);
    expect(first).toMatchObject({ size: data.length, length: data.length });
    expect((await collect(first.body)).equals(data)).toBe(true);
    expect((await collect(second.body)).equals(data)).toBe(true);
    await source.whenIdle();
    expect(upstream.gets).toBe(1);

    const hit = await source.open('acme/app', digest, { signal });
    expect(hit).toMatchObject({ source: 'hit', size: data.length });
    expect((await collect(hit.body)).equals(data)).toBe(true);
    expect(await source.head('acme/app', digest, { signal })).toEqual({
      source: 'hit',
      size: data.length,
      length: data.length,
    });
    expect(upstream.gets).toBe(1);
  });

  it('serves a range with its Content-Range, and refuses one that selects no byte', async () => {
    const part = await source.open('acme/app', digest, {
      declaredSize: data.length,
      range: 'bytes=10-19',
      signal,
    });
    expect(part).toMatchObject({ source: 'miss', length: 10, contentRange: `bytes 10-19/${data.length}` });
    expect((await collect(part.body)).equals(data.subarray(10, 20))).toBe(true);
    await source.whenIdle();
    const refused = source.open('acme/app', digest, { range: `bytes=${data.length}-`, signal });
    await expect(refused).rejects.toThrow(OciError);
    await expect(refused).rejects.toMatchObject({
      code: 'RANGE_INVALID',
      headers: { 'Content-Range': `bytes */${data.length}` },
    });
  });

  it('streams digests the cache does not store straight from upstream, marked bypass', async () => {
    const other = Buffer.from('sha512 blob');
    upstream.blobs.set(sha512(other), other);
    const whole = await source.open('acme/app', sha512(other), { declaredSize: other.length, signal });
    expect(whole).toMatchObject({ source: 'bypass', size: other.length, length: other.length });
    expect((await collect(whole.body)).equals(other)).toBe(true);
    const part = await source.open('acme/app', sha512(other), {
      declaredSize: other.length,
      range: 'bytes=0-5',
      signal,
    });
    expect(part).toMatchObject({ source: 'bypass', contentRange: `bytes 0-5/${other.length}`, length: 6 });
    expect((await source.head('acme/app', sha512(other), { signal })).source).toBe('bypass');
  });

  it('answers BLOB_UNKNOWN for a blob upstream does not have', async () => {
    const missing = sha256(Buffer.from('nothing'));
    await expect(source.open('acme/app', missing, { signal })).rejects.toMatchObject({
      code: 'BLOB_UNKNOWN',
    });
    await expect(source.head('acme/app', missing, { signal })).rejects.toMatchObject({
      code: 'BLOB_UNKNOWN',
    });
  });
  it('with offload, hands a hit over as its file (ranges judged by the one parser) and streams the rest', async () => {
    // A miss and a join stream as usual: nothing is committed yet for nginx to send.
    const [miss, joined] = await Promise.all([
      source.open('acme/app', digest, { declaredSize: data.length, signal, offload: true }),
      source.open('acme/app', digest, { declaredSize: data.length, signal, offload: true }),
    ]);
    expect([miss.source, miss.file, joined.source, joined.file]).toEqual([
      'miss',
      undefined,
      'joined',
      undefined,
    ]);
    expect((await collect(miss.body)).equals(data)).toBe(true);
    await collect(joined.body);
    await source.whenIdle();

    const hex = digest.slice('sha256:'.length);
    const file = `sha256/${hex.slice(0, 2)}/${hex}`;
    const hit = await source.open('acme/app', digest, { signal, offload: true });
    expect(hit).toEqual({ source: 'hit', size: data.length, length: data.length, file });
    const part = await source.open('acme/app', digest, { range: 'bytes=-100', signal, offload: true });
    expect(part).toEqual({
      source: 'hit',
      size: data.length,
      length: 100,
      contentRange: `bytes ${data.length - 100}-${data.length - 1}/${data.length}`,
      file,
    });
    await expect(
      source.open('acme/app', digest, { range: `bytes=${data.length}-`, signal, offload: true }),
    ).rejects.toMatchObject({ code: 'RANGE_INVALID' });
    // Without offload the same hit is read by the gateway.
    const streamed = await source.open('acme/app', digest, { signal });
    expect(streamed.file).toBeUndefined();
    expect((await collect(streamed.body)).equals(data)).toBe(true);

    const other = Buffer.from('sha512 blob');
    upstream.blobs.set(sha512(other), other);
    const bypass = await source.open('acme/app', sha512(other), { signal, offload: true });
    expect([bypass.source, bypass.file]).toEqual(['bypass', undefined]);
    await collect(bypass.body);
  });
});
