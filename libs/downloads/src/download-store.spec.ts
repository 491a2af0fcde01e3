import { createHash } from 'node:crypto';
import { PassThrough, Readable } from 'node:stream';
import { OciError } from '@gatehouse/oci';
import { FakeBlobStore } from '@gatehouse/testing/fakes/blob-store.fake';
import type { UpstreamDownload } from '@gatehouse/upstream';
import { DownloadKey, DownloadObject, DownloadStore } from './download-store';

const hex = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function read(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of body) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** A typed upstream file: records what was asked; `hold` keeps whole-file bodies open until released. */
class FakeUpstreamFile {
  readonly asked: Array<string | undefined> = [];
  private releases: Array<() => void> = [];
  constructor(
    readonly data: Buffer,
    private readonly options: { hold?: boolean; ignoreRange?: boolean; missing?: boolean } = {},
  ) {}

  open = async (range: string | undefined): Promise<UpstreamDownload | null> => {
    this.asked.push(range);
    if (this.options.missing) return null;
    const m = range && !this.options.ignoreRange ? /^bytes=(\d+)-(\d+)$/.exec(range) : null;
    const part = m ? this.data.subarray(Number(m[1]), Number(m[2]) + 1) : this.data;
    const body = new PassThrough();
    if (this.options.hold && !m) {
      body.write(part.subarray(0, 1));
      this.releases.push(() => body.end(part.subarray(1)));
    } else body.end(part);
    return {
      found: true,
      status: m ? 206 : 200,
      size: this.data.length,
      length: part.length,
      contentRange: m ? `bytes ${m[1]}-${m[2]}/${this.data.length}` : undefined,
      etag: undefined,
      body: body as unknown as UpstreamDownload['body'],
      redirected: false,
    };
  };

  release(): void {
    for (const r of this.releases.splice(0)) r();
  }
}

const key = (over: Partial<DownloadKey> = {}): DownloadKey => ({
  kind: 'releases',
  owner: 'acme',
  name: 'tool',
  version: 'v1.0.0',
  filename: 'tool.bin',
  ...over,
});

function asset(file: FakeUpstreamFile, over: Partial<DownloadObject> = {}): DownloadObject {
  return {
    key: key(),
    revision: 'uuid-1#' + file.data.length,
    sha256: null,
    size: file.data.length,
    open: (range) => file.open(range),
    ...over,
  };
}

describe('DownloadStore', () => {
  const signal = new AbortController().signal;
  let blobs: FakeBlobStore;
  let store: DownloadStore;
  const data = Buffer.from('0123456789abcdefghij'.repeat(100));

  beforeEach(() => {
    blobs = new FakeBlobStore();
    store = new DownloadStore(blobs);
  });

  it('opens a file whose sha256 the upstream states by digest, with its size', async () => {
    const file = new FakeUpstreamFile(data);
    const object = asset(file, { key: key({ kind: 'packages' }), sha256: hex(data) });
    const first = await store.open(object, undefined, signal);
    expect(first).toMatchObject({ source: 'miss', status: 200, size: data.length, sha256: hex(data) });
    expect((await read(first.body)).equals(data)).toBe(true);
    const again = await store.open(object, undefined, signal);
    expect(again.source).toBe('hit');
    expect(blobs.calls.map((c) => [c.method, c.key, c.expectedSize])).toEqual([
      ['open', `sha256:${hex(data)}`, data.length],
      ['open', `sha256:${hex(data)}`, data.length],
    ]);
    expect(file.asked).toEqual([undefined]);
  });

  it('fills a release asset by its identity, learns its digest, then serves it by digest', async () => {
    const file = new FakeUpstreamFile(data);
    const object = asset(file);
    expect(store.knownSha256(object)).toBeNull();
    const first = await store.open(object, undefined, signal);
    expect(first).toMatchObject({ source: 'miss', status: 200, length: data.length, sha256: null });
    expect((await read(first.body)).equals(data)).toBe(true);
    expect(store.knownSha256(object)).toBe(hex(data));
    const second = await store.open(object, undefined, signal);
    expect(second).toMatchObject({ source: 'hit', sha256: hex(data) });
    expect((await read(second.body)).equals(data)).toBe(true);
    expect(file.asked).toEqual([undefined]);
  });

  it('lets a second whole-file request join the running fill at once instead of waiting for it', async () => {
    const file = new FakeUpstreamFile(data, { hold: true });
    const object = asset(file);
    const first = await store.open(object, undefined, signal);
    // The first fill has not ended (the upstream holds its body): the second opens anyway.
    const second = await store.open(object, undefined, signal);
    expect([first.source, second.source]).toEqual(['miss', 'joined']);
    expect(blobs.isFilling(blobs.calls[0].key)).toBe(true);
    file.release();
    const [a, b] = await Promise.all([read(first.body), read(second.body)]);
    expect(a.equals(data) && b.equals(data)).toBe(true);
    expect(file.asked).toEqual([undefined]);
  });

  it('keys the identity by kind, owner, repository, tag and filename, not by one upstream id', async () => {
    const file = new FakeUpstreamFile(data);
    await read((await store.open(asset(file), undefined, signal)).body);
    const sameUuidElsewhere = asset(file, { key: key({ name: 'other' }) });
    expect(store.knownSha256(sameUuidElsewhere)).toBeNull();
    const otherTag = asset(file, { key: key({ version: 'v2.0.0' }) });
    expect(store.knownSha256(otherTag)).toBeNull();
    const keys = new Set(blobs.calls.map((c) => c.key));
    await read((await store.open(otherTag, undefined, signal)).body);
    expect(new Set(blobs.calls.map((c) => c.key)).size).toBe(keys.size + 1);
  });

  it('does not use a digest learnt for a replaced upload of the same file', async () => {
    const file = new FakeUpstreamFile(data);
    await read((await store.open(asset(file), undefined, signal)).body);
    const replaced = new FakeUpstreamFile(Buffer.from('a new build'));
    const object = asset(replaced, { revision: 'uuid-2#11' });
    expect(store.knownSha256(object)).toBeNull();
    const opened = await store.open(object, undefined, signal);
    expect((await read(opened.body)).toString()).toBe('a new build');
    expect(store.knownSha256(object)).toBe(hex(Buffer.from('a new build')));
  });

  it('forgets a learnt digest the upstream file no longer has, and learns the new one', async () => {
    const file = new FakeUpstreamFile(data);
    const object = asset(file);
    await read((await store.open(object, undefined, signal)).body);
    // Evicted from the cache, then replaced upstream in place (same uuid and size).
    blobs.committed.clear();
    const swapped = Buffer.from(data).fill(0x41, 0, 10);
    const inPlace = asset(new FakeUpstreamFile(swapped), { revision: object.revision });
    const failed = await store.open(inPlace, undefined, signal);
    await expect(read(failed.body)).rejects.toMatchObject({ failure: 'DIGEST_MISMATCH' });
    expect(store.knownSha256(inPlace)).toBeNull();
    const relearnt = await store.open(inPlace, undefined, signal);
    expect((await read(relearnt.body)).equals(swapped)).toBe(true);
    expect(store.knownSha256(inPlace)).toBe(hex(swapped));
  });

  it('passes a range of a file not yet known through from upstream', async () => {
    const file = new FakeUpstreamFile(data);
    const opened = await store.open(asset(file), 'bytes=10-19', signal);
    expect(opened).toMatchObject({
      source: 'bypass',
      status: 206,
      length: 10,
      contentRange: `bytes 10-19/${data.length}`,
    });
    expect((await read(opened.body)).equals(data.subarray(10, 20))).toBe(true);
    expect(file.asked).toEqual(['bytes=10-19']);
    expect(blobs.calls).toEqual([expect.objectContaining({ method: 'openByIdentity', joinOnly: true })]);
  });

  it('serves a range from a running fill of the file', async () => {
    const file = new FakeUpstreamFile(data, { hold: true });
    const whole = await store.open(asset(file), undefined, signal);
    const ranged = await store.open(asset(file), 'bytes=5-9', signal);
    expect(ranged).toMatchObject({ source: 'joined', status: 206, contentRange: `bytes 5-9/${data.length}` });
    file.release();
    expect((await read(ranged.body)).equals(data.subarray(5, 10))).toBe(true);
    await read(whole.body);
    expect(file.asked).toEqual([undefined]);
  });

  it('starts the fill when the upstream ignores Range, and still serves the range', async () => {
    const file = new FakeUpstreamFile(data, { ignoreRange: true });
    const opened = await store.open(asset(file), 'bytes=0-4', signal);
    expect(opened).toMatchObject({ source: 'miss', status: 206, length: 5 });
    expect((await read(opened.body)).equals(data.subarray(0, 5))).toBe(true);
    expect(store.knownSha256(asset(file))).toBe(hex(data));
  });

  it('refuses an unsatisfiable range with 416 and the size, before asking anyone', async () => {
    const file = new FakeUpstreamFile(data);
    const refused = await store.open(asset(file), `bytes=${data.length}-`, signal).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(OciError);
    expect(refused).toMatchObject({ code: 'RANGE_INVALID' });
    expect(file.asked).toEqual([]);
    expect(blobs.calls).toEqual([]);
  });

  it('answers NAME_UNKNOWN when the upstream no longer has the file', async () => {
    const file = new FakeUpstreamFile(data, { missing: true });
    await expect(store.open(asset(file), undefined, signal)).rejects.toMatchObject({ code: 'NAME_UNKNOWN' });
    await expect(store.open(asset(file), 'bytes=0-1', signal)).rejects.toMatchObject({
      code: 'NAME_UNKNOWN',
    });
  });

  it('keeps a bounded number of learnt digests, dropping the least recently used', async () => {
    store = new DownloadStore(blobs, 2);
    const objects = ['a', 'b', 'c'].map((f) =>
      asset(new FakeUpstreamFile(Buffer.from(f)), { key: key({ filename: f }) }),
    );
    for (const o of objects.slice(0, 2)) await read((await store.open(o, undefined, signal)).body);
    expect(store.knownSha256(objects[0])).not.toBeNull(); // a is now the most recent
    await read((await store.open(objects[2], undefined, signal)).body);
    expect(objects.map((o) => store.knownSha256(o) !== null)).toEqual([true, false, true]);
  });
});
