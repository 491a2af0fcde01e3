import { join } from 'node:path';
import {
  blobOf,
  CacheUnderTest,
  collect,
  createCache,
  digestOf,
  FakeUpstream,
  filesUnder,
  makeTempDir,
  removeDir,
  sha256,
} from './testing/blob-cache.fixtures';

/** Content known by an identity (a release asset) whose digest the fill learns. */
describe('BlobFillCoordinator.openByIdentity', () => {
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

  it('runs one fill per identity, joined by later readers, committed under the digest it hashed to', async () => {
    const data = blobOf(3 * 1024 * 1024, 3);
    const upstream = new FakeUpstream(data);
    const learnt: string[] = [];
    const options = { learnt: (d: string) => learnt.push(d) };
    const first = await t.coordinator.openByIdentity('asset-a', upstream.open, options);
    const second = await t.coordinator.openByIdentity('asset-a', upstream.open, options);
    expect([first?.source, second?.source]).toEqual(['fill-started', 'fill-joined']);
    const digest = sha256(data);
    expect(await Promise.all([digestOf(first!.body), digestOf(second!.body)])).toEqual([
      { digest, bytes: data.length },
      { digest, bytes: data.length },
    ]);
    await t.coordinator.whenIdle();
    expect(upstream.opens).toBe(1);
    expect(learnt).toEqual([digest]);
    expect(t.cache.stat(digest)).toBe(data.length);
    expect(await filesUnder(dir)).toEqual([join('sha256', digest.slice(7, 9), digest.slice(7))]);
    const hit = await t.coordinator.open(digest, data.length, upstream.open);
    expect(hit.source).toBe('hit');
    expect((await collect(hit.body)).equals(data)).toBe(true);
  });

  it('is paced by upstream and disk, not by a first reader that reads nothing', async () => {
    const data = blobOf(12 * 1024 * 1024, 4);
    const upstream = new FakeUpstream(data);
    const learnt: string[] = [];
    const stalled = await t.coordinator.openByIdentity('asset-b', upstream.open, {
      learnt: (d) => learnt.push(d),
    });
    const late = await t.coordinator.openByIdentity('asset-b', upstream.open, { learnt: () => undefined });
    expect((await digestOf(late!.body)).bytes).toBe(data.length);
    await t.coordinator.whenIdle();
    expect(learnt).toEqual([sha256(data)]);
    expect(upstream.ended).toBe(true);
    // The stalled reader still gets every byte when it reads at last.
    expect((await collect(stalled!.body)).equals(data)).toBe(true);
  });

  it('joins a running fill for a range, and answers null to joinOnly when none runs', async () => {
    const data = blobOf(1024 * 1024, 5);
    const upstream = new FakeUpstream(data);
    const learnt = () => undefined;
    expect(
      await t.coordinator.openByIdentity('asset-c', upstream.open, { learnt, joinOnly: true }),
    ).toBeNull();
    expect(upstream.opens).toBe(0);
    const whole = await t.coordinator.openByIdentity('asset-c', upstream.open, { learnt });
    const ranged = await t.coordinator.openByIdentity('asset-c', upstream.open, {
      learnt,
      joinOnly: true,
      range: { start: 1000, end: 1999 },
    });
    expect(ranged?.source).toBe('fill-joined');
    expect((await collect(ranged!.body)).equals(data.subarray(1000, 2000))).toBe(true);
    expect((await collect(whole!.body)).equals(data)).toBe(true);
    expect(upstream.opens).toBe(1);
  });

  it('keys identities apart from content digests and from each other', async () => {
    const a = new FakeUpstream(blobOf(100_000, 6));
    const b = new FakeUpstream(blobOf(100_000, 7));
    const learnt = () => undefined;
    const ra = await t.coordinator.openByIdentity('x', a.open, { learnt });
    const rb = await t.coordinator.openByIdentity('y', b.open, { learnt });
    expect([ra?.source, rb?.source]).toEqual(['fill-started', 'fill-started']);
    expect((await collect(ra!.body)).equals(a.data)).toBe(true);
    expect((await collect(rb!.body)).equals(b.data)).toBe(true);
  });

  it('fills an empty file and learns the empty digest', async () => {
    const upstream = new FakeUpstream(Buffer.alloc(0));
    const learnt: string[] = [];
    const opened = await t.coordinator.openByIdentity('empty', upstream.open, {
      learnt: (d) => learnt.push(d),
    });
    expect(opened?.size).toBe(0);
    expect((await collect(opened!.body)).length).toBe(0);
    await t.coordinator.whenIdle();
    expect(learnt).toEqual([sha256(Buffer.alloc(0))]);
  });
});
