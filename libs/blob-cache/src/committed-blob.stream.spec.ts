import { createServer, get, IncomingMessage, Server } from 'node:http';
import { PassThrough, Readable } from 'node:stream';
import { AddressInfo } from 'node:net';
import {
  CommittedBlobStream,
  LEAN_BUDGET_BYTES,
  LEAN_MAX_CHUNK_BYTES,
  leanChunkBytes,
} from './committed-blob.stream';
import {
  blobOf,
  CacheUnderTest,
  collect,
  createCache,
  FakeUpstream,
  makeTempDir,
  removeDir,
  sha256,
} from './testing/blob-cache.fixtures';

/**
 * The lean path of a committed blob: piped into a real HTTP response it writes from two reused
 * buffers, paced by the socket. Every body is checked byte for byte, with a reader slower than
 * the disk (the socket full, the writes waiting for 'drain') and one that goes away.
 */
describe('leanChunkBytes', () => {
  const KiB = 1024;
  it('gives 1 MiB buffers while the budget has room, then the read size', () => {
    expect(leanChunkBytes(256 * KiB, 0)).toBe(LEAN_MAX_CHUNK_BYTES);
    expect(leanChunkBytes(256 * KiB, LEAN_BUDGET_BYTES - 2 * LEAN_MAX_CHUNK_BYTES)).toBe(
      LEAN_MAX_CHUNK_BYTES,
    );
    expect(leanChunkBytes(256 * KiB, LEAN_BUDGET_BYTES - 1024 * KiB)).toBe(512 * KiB);
    expect(leanChunkBytes(256 * KiB, LEAN_BUDGET_BYTES - 256 * KiB)).toBe(256 * KiB);
    expect(leanChunkBytes(256 * KiB, LEAN_BUDGET_BYTES)).toBe(256 * KiB);
  });

  it('keeps 32 streams within the budget over what the read size alone would hold', () => {
    let held = 0;
    for (let i = 0; i < 32; i++) held += 2 * leanChunkBytes(256 * KiB, held);
    expect(held).toBeLessThanOrEqual(LEAN_BUDGET_BYTES + 32 * 2 * 256 * KiB);
    expect(held).toBeGreaterThan(32 * 2 * 256 * KiB);
  });
});

describe('CommittedBlobStream', () => {
  let dir: string;
  let t: CacheUnderTest;
  let server: Server;
  let port: number;
  let served: CommittedBlobStream[];

  beforeEach(async () => {
    dir = await makeTempDir();
    t = await createCache(dir, { readChunkBytes: 64 * 1024 });
    served = [];
    server = createServer((req, res) => {
      const [digest, range] = (req.url ?? '').slice(1).split('/');
      const [start, end] = range ? range.split('-').map(Number) : [undefined, undefined];
      void t.cache.openRange(digest, start, end).then((stream) => {
        served.push(stream!);
        stream!.pipe(res);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });

  afterEach(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    await t.cache.close();
    await removeDir(dir);
  });

  async function commit(data: Buffer): Promise<string> {
    const digest = sha256(data);
    const result = await t.coordinator.open(digest, data.length, new FakeUpstream(data).open);
    await collect(result.body);
    await t.coordinator.whenIdle();
    return digest;
  }

  function fetch(path: string): Promise<IncomingMessage> {
    return new Promise((resolve, reject) =>
      get({ port, host: '127.0.0.1', path }, resolve).on('error', reject),
    );
  }

  it('serves the whole blob byte for byte to a slow reader, counting what it handed over', async () => {
    const data = blobOf(16 * 1024 * 1024 + 17, 5);
    const digest = await commit(data);
    const res = await fetch(`/${digest}`);
    const chunks: Buffer[] = [];
    for await (const chunk of res) {
      chunks.push(chunk as Buffer);
      // A reader slower than the disk: the socket is full and the writes wait for 'drain'.
      if (chunks.length % 4 === 0) await new Promise((r) => setTimeout(r, 5));
    }
    expect(sha256(Buffer.concat(chunks))).toBe(digest);
    expect(served[0].bytesDelivered).toBe(data.length);
    expect(served[0].readableEnded).toBe(true);
    await new Promise((r) => setImmediate(r));
    expect(t.cache.activeReaders(digest)).toBe(0);
  });

  it('serves a range', async () => {
    const data = blobOf(1024 * 1024, 9);
    const digest = await commit(data);
    const res = await fetch(`/${digest}/1000-700000`);
    expect((await collect(res as unknown as Readable)).equals(data.subarray(1000, 700001))).toBe(true);
    expect(served[0].bytesDelivered).toBe(699001);
  });

  it('stops and releases the file when the client goes away', async () => {
    const data = blobOf(8 * 1024 * 1024, 3);
    const digest = await commit(data);
    const res = await fetch(`/${digest}`);
    await new Promise((r) => res.once('data', r));
    res.destroy();
    await new Promise<void>((resolve) => served[0].once('close', () => resolve()));
    expect(served[0].readableEnded).toBe(false);
    expect(served[0].bytesDelivered).toBeLessThan(data.length);
    await new Promise((r) => setTimeout(r, 20));
    expect(t.cache.activeReaders(digest)).toBe(0);
  });

  it('is an ordinary stream when piped into anything but a response (whose callbacks come early)', async () => {
    const data = blobOf(4 * 1024 * 1024 + 3, 6);
    const digest = await commit(data);
    const stream = (await t.cache.openRange(digest))!;
    const through = new PassThrough();
    stream.pipe(through);
    const chunks: Buffer[] = [];
    for await (const chunk of through) {
      chunks.push(chunk as Buffer);
      await new Promise((r) => setImmediate(r));
    }
    expect(sha256(Buffer.concat(chunks))).toBe(digest);
  });

  it('is an ordinary Readable when read instead of piped', async () => {
    const data = blobOf(300_000, 4);
    const digest = await commit(data);
    const stream = (await t.cache.openRange(digest))!;
    expect((await collect(stream)).equals(data)).toBe(true);
    expect(stream.bytesDelivered).toBe(data.length);
  });
});
