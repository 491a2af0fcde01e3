import { once } from 'node:events';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { BlobCacheException } from './blob-cache.exception';
import { BlobOpenResult } from './blob-fill.coordinator';
import {
  blobOf,
  CacheUnderTest,
  collect,
  createCache,
  digestOf,
  FailingBlobFileSystem,
  failureOf,
  FakeUpstream,
  filesUnder,
  makeTempDir,
  removeDir,
  sha256,
} from './testing/blob-cache.fixtures';

function failureCode(error: Error): string | undefined {
  return error instanceof BlobCacheException ? error.failure : undefined;
}

describe('BlobFillCoordinator', () => {
  let dir: string;
  let t: CacheUnderTest;

  beforeEach(async () => {
    dir = await makeTempDir();
    t = await createCache(dir);
  });

  afterEach(async () => {
    await t.coordinator.whenIdle();
    await t.cache.close();
    await removeDir(dir);
  });

  it('serves 20 concurrent clients from ONE upstream fetch, streaming before upstream ends', async () => {
    const data = blobOf(20 * 1024 * 1024, 7);
    const digest = sha256(data);
    let firstByte!: () => void;
    const firstByteSeen = new Promise<void>((resolve) => (firstByte = resolve));
    // Upstream holds everything past the first MiB until the first client has a byte: a cache
    // that stored before forwarding would never get there.
    const upstream = new FakeUpstream(data, { gate: { atByte: 1024 * 1024, until: firstByteSeen } });

    const early = await Promise.all(
      Array.from({ length: 10 }, () => t.coordinator.open(digest, data.length, upstream.open)),
    );
    let upstreamEndedAtFirstByte: boolean | undefined;
    early[0].body.once('data', () => {
      upstreamEndedAtFirstByte = upstream.ended;
      firstByte();
    });
    const earlyDigests = early.map((r) => digestOf(r.body));
    await firstByteSeen;
    const late = await Promise.all(
      Array.from({ length: 10 }, () => t.coordinator.open(digest, data.length, upstream.open)),
    );
    const results = await Promise.all([...earlyDigests, ...late.map((r) => digestOf(r.body))]);

    expect(upstream.opens).toBe(1);
    expect(upstreamEndedAtFirstByte).toBe(false);
    expect(early.map((r) => r.source)).toEqual(['fill-started', ...Array(9).fill('fill-joined')]);
    expect(late.every((r: BlobOpenResult) => r.source === 'fill-joined' && r.size === data.length)).toBe(
      true,
    );
    expect(results).toHaveLength(20);
    for (const r of results) expect(r).toEqual({ digest, bytes: data.length });

    await t.coordinator.whenIdle();
    expect(t.cache.stat(digest)).toBe(data.length);
    expect(await filesUnder(dir)).toEqual([join('sha256', digest.slice(7, 9), digest.slice(7))]);
    const hit = await t.coordinator.open(digest, data.length, upstream.open);
    expect(hit.source).toBe('hit');
    expect(await digestOf(hit.body)).toEqual({ digest, bytes: data.length });
    expect(upstream.opens).toBe(1);
    expect(t.metrics.counts).toMatchObject({
      hit: 1,
      miss: 20,
      bytesFromUpstream: data.length,
      fillsInFlight: 0,
    });
  }, 30_000);

  it('keeps filling after the client that started the fill disconnects', async () => {
    const data = blobOf(2 * 1024 * 1024, 3);
    const digest = sha256(data);
    const upstream = new FakeUpstream(data);
    const first = await t.coordinator.open(digest, undefined, upstream.open);
    await once(first.body, 'data');
    first.body.destroy();

    await t.coordinator.whenIdle();
    expect(upstream.signals[0].aborted).toBe(false);
    expect(upstream.ended).toBe(true);
    expect(t.cache.stat(digest)).toBe(data.length);
    expect(t.cache.activeReaders(digest)).toBe(0);
    const again = await t.coordinator.open(digest, data.length, upstream.open);
    expect(again.source).toBe('hit');
    expect((await collect(again.body)).equals(data)).toBe(true);
    expect(upstream.opens).toBe(1);
  });

  describe('a failed fill reaches every reader as an error and leaves no file', () => {
    const data = blobOf(512 * 1024, 11);
    const digest = sha256(data);

    async function expectFailureThenRecovery(
      upstream: FakeUpstream,
      expectedFailure: string,
      expectedSize?: number,
      beforeRecovery: () => Promise<void> = async () => undefined,
    ) {
      const readers = await Promise.all([
        t.coordinator.open(digest, expectedSize, upstream.open),
        t.coordinator.open(digest, expectedSize, upstream.open),
        t.coordinator.open(digest, expectedSize, upstream.open, { range: { start: 1000, end: 2000 } }),
      ]);
      const errors = await Promise.all(readers.map((r) => failureOf(r.body)));
      expect(errors.map(failureCode)).toEqual([expectedFailure, expectedFailure, expectedFailure]);
      await t.coordinator.whenIdle();
      expect(await filesUnder(dir)).toEqual([]);
      expect(t.cache.stat(digest)).toBeNull();
      expect(upstream.opens).toBe(1);

      await beforeRecovery();
      const good = new FakeUpstream(data);
      const next = await t.coordinator.open(digest, data.length, good.open);
      expect(next.source).toBe('fill-started');
      expect((await collect(next.body)).equals(data)).toBe(true);
      expect(good.opens).toBe(1);
    }

    it('digest mismatch', async () => {
      const wrong = Buffer.from(data);
      wrong[wrong.length - 1] ^= 0xff;
      await expectFailureThenRecovery(new FakeUpstream(wrong), 'DIGEST_MISMATCH', data.length);
    });

    it('truncated upstream body', async () => {
      await expectFailureThenRecovery(
        new FakeUpstream(data, { truncateAt: data.length - 100 }),
        'UPSTREAM_TRUNCATED',
      );
    });

    it('upstream connection error mid-body', async () => {
      await expectFailureThenRecovery(new FakeUpstream(data, { failAt: 200 * 1024 }), 'UPSTREAM_FAILED');
    });

    it('upstream sending more than it announced', async () => {
      const longer = Buffer.concat([data, Buffer.from('extra')]);
      await expectFailureThenRecovery(
        new FakeUpstream(longer, { announcedSize: data.length }),
        'SIZE_MISMATCH',
      );
    });

    it('fill timeout, which also aborts the upstream request', async () => {
      await t.cache.close();
      t = await createCache(dir, { fillTimeoutMs: 300 });
      const stalled = new FakeUpstream(data, { stallAt: 100 * 1024 });
      // The recovery runs with the default timeout, so a loaded machine cannot make it time out.
      await expectFailureThenRecovery(stalled, 'FILL_TIMEOUT', undefined, async () => {
        await t.cache.close();
        t = await createCache(dir);
      });
      expect(stalled.signals[0].aborted).toBe(true);
    });
  });

  it('never delivers the last byte before the digest is verified', async () => {
    const data = blobOf(300 * 1024, 5);
    const wrong = Buffer.from(data);
    wrong[wrong.length - 1] ^= 0xff;
    const { body } = await t.coordinator.open(sha256(data), data.length, new FakeUpstream(wrong).open);
    let received = 0;
    body.on('data', (chunk: Buffer) => (received += chunk.length));
    const error = await failureOf(body);
    expect(failureCode(error)).toBe('DIGEST_MISMATCH');
    expect(received).toBeLessThan(data.length);
  });

  it('rejects open with the upstream error when upstream cannot serve the blob, without caching anything', async () => {
    const notFound = Object.assign(new Error('blob unknown upstream'), { status: 404 });
    const openUpstream = jest.fn(async () => {
      throw notFound;
    });
    const digest = sha256(Buffer.from('x'));
    const opens = [t.coordinator.open(digest, 1, openUpstream), t.coordinator.open(digest, 1, openUpstream)];
    await expect(opens[0]).rejects.toBe(notFound);
    await expect(opens[1]).rejects.toBe(notFound);
    expect(openUpstream).toHaveBeenCalledTimes(1);
    await t.coordinator.whenIdle();
    expect(t.cache.activeReaders(digest)).toBe(0);
    expect(await filesUnder(dir)).toEqual([]);
  });

  it('refuses an upstream that announces another size than the descriptor', async () => {
    const data = blobOf(1000);
    const upstream = new FakeUpstream(data, { announcedSize: 999 });
    const error = await t.coordinator.open(sha256(data), 1000, upstream.open).catch((e: Error) => e);
    expect(failureCode(error as Error)).toBe('SIZE_MISMATCH');
    await t.coordinator.whenIdle();
    expect(t.logger.lines.some((l) => l.level === 'error')).toBe(true);
  });

  it('serves ranges from a fill in progress and from the committed file', async () => {
    const data = blobOf(1024 * 1024, 9);
    const digest = sha256(data);
    const upstream = new FakeUpstream(data, { chunkBytes: 16 * 1024 });
    const [whole, middle, tail] = await Promise.all([
      t.coordinator.open(digest, data.length, upstream.open),
      t.coordinator.open(digest, data.length, upstream.open, { range: { start: 500_000, end: 500_009 } }),
      t.coordinator.open(digest, data.length, upstream.open, {
        range: { start: data.length - 1, end: data.length - 1 },
      }),
    ]);
    expect((await collect(middle.body)).equals(data.subarray(500_000, 500_010))).toBe(true);
    expect((await collect(tail.body)).equals(data.subarray(data.length - 1))).toBe(true);
    expect((await collect(whole.body)).equals(data)).toBe(true);
    await t.coordinator.whenIdle();

    const hit = await t.coordinator.open(digest, data.length, upstream.open, {
      range: { start: 10, end: 19 },
    });
    expect(hit).toMatchObject({ source: 'hit', size: data.length });
    expect((await collect(hit.body)).equals(data.subarray(10, 20))).toBe(true);
    const direct = await t.cache.openRange(digest, 1000, 1999);
    expect((await collect(direct!)).equals(data.subarray(1000, 2000))).toBe(true);

    const outside = await t.coordinator
      .open(digest, data.length, upstream.open, { range: { start: data.length, end: data.length + 5 } })
      .catch((e: Error) => e);
    expect(failureCode(outside as Error)).toBe('RANGE_NOT_SATISFIABLE');
    expect((outside as BlobCacheException).status).toBe(416);
    expect(upstream.opens).toBe(1);
    expect(t.cache.activeReaders(digest)).toBe(0);
  });

  it('serves an empty blob', async () => {
    const empty = Buffer.alloc(0);
    const upstream = new FakeUpstream(empty);
    const fill = await t.coordinator.open(sha256(empty), 0, upstream.open);
    expect(fill.size).toBe(0);
    expect((await collect(fill.body)).length).toBe(0);
    await t.coordinator.whenIdle();
    const hit = await t.coordinator.open(sha256(empty), 0, upstream.open);
    expect(hit.source).toBe('hit');
    expect((await collect(hit.body)).length).toBe(0);
  });

  it('does not hold up a fast reader or the fill for a reader that does not read', async () => {
    const data = blobOf(4 * 1024 * 1024, 13);
    const digest = sha256(data);
    const upstream = new FakeUpstream(data);
    const stalled = await t.coordinator.open(digest, data.length, upstream.open);
    const fast = await t.coordinator.open(digest, data.length, upstream.open);
    // `stalled` is never consumed: its stream buffers at most its high-water mark.
    expect(await digestOf(fast.body)).toEqual({ digest, bytes: data.length });
    await t.coordinator.whenIdle();
    expect(t.cache.stat(digest)).toBe(data.length);
    expect(stalled.body.readableLength).toBeLessThanOrEqual(64 * 1024);
    expect(await digestOf(stalled.body)).toEqual({ digest, bytes: data.length });
  });

  it('rejects digests it cannot cache before doing anything', async () => {
    const upstream = new FakeUpstream(Buffer.from('x'));
    for (const digest of [
      'sha512:' + 'a'.repeat(128),
      'sha256:../../etc/passwd',
      'sha256:' + 'A'.repeat(64),
    ]) {
      const error = await t.coordinator.open(digest, undefined, upstream.open).catch((e: Error) => e);
      expect(failureCode(error as Error)).toBe('DIGEST_NOT_CACHEABLE');
    }
    expect(upstream.opens).toBe(0);
  });

  describe('when the disk fails', () => {
    const data = blobOf(3 * 1024 * 1024 + 123, 17);
    const digest = sha256(data);

    it('ENOSPC mid-fill: every reader still gets the full bytes, no partial file, failure counted', async () => {
      const fileSystem = new FailingBlobFileSystem({ code: 'ENOSPC', afterBytes: 1024 * 1024 + 7 });
      await t.cache.close();
      t = await createCache(dir, {}, { fileSystem });
      const upstream = new FakeUpstream(data);
      const readers = await Promise.all([
        t.coordinator.open(digest, data.length, upstream.open),
        t.coordinator.open(digest, data.length, upstream.open),
        t.coordinator.open(digest, data.length, upstream.open, {
          range: { start: 2_000_000, end: data.length - 1 },
        }),
      ]);
      const [a, b, c] = await Promise.all([
        digestOf(readers[0].body),
        collect(readers[1].body),
        collect(readers[2].body),
      ]);
      expect(a).toEqual({ digest, bytes: data.length });
      expect(b.equals(data)).toBe(true);
      expect(c.equals(data.subarray(2_000_000))).toBe(true);

      await t.coordinator.whenIdle();
      expect(upstream.opens).toBe(1);
      expect(await filesUnder(dir)).toEqual([]);
      expect(t.cache.stat(digest)).toBeNull();
      expect(t.cache.stats().writeFailures).toBe(1);
      expect(t.metrics.counts.writeFailures).toBe(1);
      expect(t.logger.lines).toContainEqual(
        expect.objectContaining({ level: 'warn', obj: expect.objectContaining({ digest, code: 'ENOSPC' }) }),
      );
    });

    it('EACCES when creating the temp file: served straight from upstream', async () => {
      const fileSystem = new FailingBlobFileSystem({ code: 'EACCES', onCreate: true });
      await t.cache.close();
      t = await createCache(dir, {}, { fileSystem });
      const upstream = new FakeUpstream(data);
      const result = await t.coordinator.open(digest, data.length, upstream.open);
      expect(result.source).toBe('fill-started');
      expect(await digestOf(result.body)).toEqual({ digest, bytes: data.length });
      await t.coordinator.whenIdle();
      expect(await filesUnder(dir)).toEqual([]);
      expect(t.metrics.counts.writeFailures).toBe(1);

      // The cache keeps serving: the next request tries again (and fails over again).
      const again = await t.coordinator.open(digest, data.length, upstream.open);
      expect(await digestOf(again.body)).toEqual({ digest, bytes: data.length });
      expect(upstream.opens).toBe(2);
    });

    it('pass-through is paced by its slowest reader, within the memory bound', async () => {
      const bound = 256 * 1024;
      const fileSystem = new FailingBlobFileSystem({ code: 'ENOSPC', afterBytes: 0 });
      await t.cache.close();
      t = await createCache(dir, { passThroughBufferBytes: bound }, { fileSystem });
      const upstream = new FakeUpstream(data, { chunkBytes: 16 * 1024 });
      const slow = await t.coordinator.open(digest, data.length, upstream.open);
      const turn = () => new Promise((resolve) => setImmediate(resolve));
      // Once degraded, the fill does no I/O of its own: it moves one upstream chunk per event-loop
      // turn, so twenty turns without progress mean it is waiting for the reader.
      while (t.metrics.counts.writeFailures === 0 || t.metrics.counts.bytesFromUpstream === 0) await turn();
      let last = -1;
      while (last !== t.metrics.counts.bytesFromUpstream) {
        last = t.metrics.counts.bytesFromUpstream;
        for (let i = 0; i < 20; i++) await turn();
      }
      const readerBuffer = 64 * 1024;
      const upstreamBuffer = 2 * 16 * 1024;
      expect(t.metrics.counts.bytesFromUpstream).toBeLessThanOrEqual(
        bound + readerBuffer + upstreamBuffer + 16 * 1024,
      );
      expect(t.metrics.counts.bytesFromUpstream).toBeLessThan(data.length);
      expect(await digestOf(slow.body)).toEqual({ digest, bytes: data.length });
      // Twenty event-loop turns per step: slow on a loaded machine, and the time is not the point.
    }, 60_000);

    it('abandons a pass-through fill once its last reader is gone', async () => {
      const fileSystem = new FailingBlobFileSystem({ code: 'EROFS', onCreate: true });
      await t.cache.close();
      t = await createCache(dir, {}, { fileSystem });
      const upstream = new FakeUpstream(data);
      const only = await t.coordinator.open(digest, data.length, upstream.open);
      await once(only.body, 'data');
      only.body.destroy();
      await t.coordinator.whenIdle();
      expect(upstream.signals[0].aborted).toBe(true);
      expect(upstream.ended).toBe(false);
    });
  });

  it('a reader of a failed fill never sees end-of-stream', async () => {
    const data = blobOf(100_000);
    const upstream = new FakeUpstream(data, { truncateAt: 99_999 });
    const { body } = await t.coordinator.open(sha256(data), undefined, upstream.open);
    const events: string[] = [];
    body.on('end', () => events.push('end'));
    await failureOf(body as Readable);
    expect(events).toEqual([]);
  });
});
