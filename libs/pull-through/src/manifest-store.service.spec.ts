import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { computeDigest } from '@gatehouse/oci';
import { ManifestStore } from './manifest-store.service';

describe('ManifestStore on disk', () => {
  let dir: string;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gatehouse-manifests-'));
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('creates its directories 0700 and its files 0600 even under umask 000', async () => {
    const root = join(dir, 'manifests');
    const previous = process.umask(0);
    try {
      const store = new ManifestStore({ dir: root, memoryMaxBytes: 1024 });
      await store.init();
      const body = Buffer.from('{"schemaVersion":2}');
      const digest = computeDigest(body);
      await store.put(digest, 'application/vnd.oci.image.manifest.v1+json', body);
      const hex = digest.slice('sha256:'.length);
      const mode = async (p: string) => ((await stat(p)).mode & 0o777).toString(8);
      for (const d of ['', 'tmp', 'sha256', join('sha256', hex.slice(0, 2))])
        expect([d, await mode(join(root, d))]).toEqual([d, '700']);
      expect(await mode(join(root, 'sha256', hex.slice(0, 2), hex))).toBe('600');
    } finally {
      process.umask(previous);
    }
  });

  it('reads back what it stored from disk in a new process (a fresh store)', async () => {
    const body = Buffer.from('{"schemaVersion":2,"layers":[]}');
    const digest = computeDigest(body);
    const first = new ManifestStore({ dir, memoryMaxBytes: 1024 });
    await first.init();
    await first.put(digest, 'application/vnd.oci.image.manifest.v1+json', body);
    const second = new ManifestStore({ dir, memoryMaxBytes: 1024 });
    await second.init();
    const got = await second.get(digest);
    expect(got?.mediaType).toBe('application/vnd.oci.image.manifest.v1+json');
    expect(got && Buffer.from(got.body).equals(body)).toBe(true);
  });

  it('keeps the most recently used manifests in memory within its byte bound', async () => {
    const bodies = ['a', 'b', 'c'].map((x) => Buffer.from(`{"schemaVersion":2,"annotations":{"x":"${x}"}}`));
    const digests = bodies.map((b) => computeDigest(b));
    const store = new ManifestStore({ dir, memoryMaxBytes: bodies[0].length * 2 });
    await store.init();
    const type = 'application/vnd.oci.image.manifest.v1+json';
    await store.put(digests[0], type, bodies[0]);
    await store.put(digests[1], type, bodies[1]);
    await store.get(digests[0]);
    await store.put(digests[2], type, bodies[2]);
    // Only memory answers now: the least recently used (b) is gone, a and c stay.
    await rm(join(dir, 'sha256'), { recursive: true, force: true });
    expect(await Promise.all(digests.map(async (d) => (await store.get(d))?.digest ?? null))).toEqual([
      digests[0],
      null,
      digests[2],
    ]);
  });
});
