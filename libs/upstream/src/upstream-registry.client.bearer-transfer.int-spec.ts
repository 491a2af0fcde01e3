import { FrontRequestRecord, seedImage, seedManifestFor } from '@gatehouse/testing/upstream';
import { parseDigest } from '@gatehouse/oci';
import { UpstreamError } from './upstream.error';
import { UpstreamBlob, UpstreamManifest } from './upstream.types';
import {
  drain,
  front,
  readPat,
  seed,
  sha256,
  useClientHarness,
  useForgejoFrontUpstream,
} from './upstream-registry.client.fixture';

// The client against the Forgejo front: manifests, blobs (serve-direct 307s to a storage origin
// that refuses Authorization, ranges, cut, stalled and trickled bodies) and tags. Tokens and
// refusals: upstream-registry.client.bearer-auth.int-spec.ts.

const harness = useClientHarness();

describe('UpstreamRegistryClient against the Forgejo front (Bearer)', () => {
  useForgejoFrontUpstream();

  it('returns a typed not-found for an unknown tag or blob under a known owner', async () => {
    const h = harness(front.url, readPat);
    await expect(h.client.getManifest('acme/app', 'v9.9.9')).resolves.toEqual({
      found: false,
      code: 'MANIFEST_UNKNOWN',
    });
    await expect(h.client.getBlob('acme/app', parseDigest(`sha256:${'0'.repeat(64)}`))).resolves.toEqual({
      found: false,
      code: 'BLOB_UNKNOWN',
    });
    expect(h.errorLines()).toEqual([]);
  });

  it('follows the serve-direct 307 to storage without Authorization, for blobs, ranges and manifests', async () => {
    const h = harness(front.url, readPat);
    const manifest = seedManifestFor(seedImage(seed, 'acme/app', 'v1.0.0'), 'amd64');
    const layer = manifest.layers[0];

    const direct = (await h.client.getBlob('acme/app', parseDigest(layer.digest))) as UpstreamBlob;
    const bytes = await drain(direct);
    expect(sha256(bytes)).toBe(layer.digest);

    front.setServeDirect(true);
    const viaStorage = (await h.client.getBlob('acme/app', parseDigest(layer.digest), {
      expectedSize: layer.size,
    })) as UpstreamBlob;
    expect(viaStorage).toMatchObject({ found: true, status: 200, size: layer.size });
    expect((await drain(viaStorage)).equals(bytes)).toBe(true);

    const part = (await h.client.getBlob('acme/app', parseDigest(layer.digest), {
      range: 'bytes=10-109',
    })) as UpstreamBlob;
    expect(part).toMatchObject({ status: 206, size: 100, contentRange: `bytes 10-109/${layer.size}` });
    expect((await drain(part)).equals(bytes.subarray(10, 110))).toBe(true);

    const m = (await h.client.getManifest('acme/app', manifest.digest)) as UpstreamManifest;
    expect(sha256(m.body!)).toBe(manifest.digest);

    const storage = front.requests.filter((r: FrontRequestRecord) => r.server === 'storage');
    expect(storage.length).toBe(3);
    expect(
      storage.every((r: FrontRequestRecord) => r.auth === 'none' && r.status >= 200 && r.status < 300),
    ).toBe(true);
    expect(
      front.requests
        .filter((r: FrontRequestRecord) => r.server === 'front' && r.kind === 'blob')
        .every((r: FrontRequestRecord) => r.auth === 'bearer'),
    ).toBe(true);
    expect(h.raw()).not.toContain('X-Amz-Signature');
  });

  it('passes Range through to Forgejo when it streams itself', async () => {
    const h = harness(front.url, readPat);
    const layer = seedManifestFor(seedImage(seed, 'acme/app', 'v1.0.0'), 'amd64').layers[0];
    const part = (await h.client.getBlob('acme/app', parseDigest(layer.digest), {
      range: 'bytes=0-9',
    })) as UpstreamBlob;
    expect(part).toMatchObject({ status: 206, size: 10, contentRange: `bytes 0-9/${layer.size}` });
    expect((await drain(part)).length).toBe(10);
  });

  it('surfaces a blob body cut by the upstream as a truncated error, never a short success', async () => {
    const h = harness(front.url, readPat);
    const layer = seedManifestFor(seedImage(seed, 'acme/app', 'v1.1.0'), 'amd64').layers[0];
    front.setBlobBehaviour(layer.digest, 'cut-after:100');
    try {
      const blob = (await h.client.getBlob('acme/app', parseDigest(layer.digest))) as UpstreamBlob;
      const err = (await drain(blob).catch((e: unknown) => e)) as UpstreamError;
      expect(err).toBeInstanceOf(UpstreamError);
      expect(err.reason).toBe('truncated');
      expect(await h.failures('truncated')).toBe(1);
      expect(String(h.errorLines()[0].msg)).toContain(
        `acme/app blob ${layer.digest} ended after 100 of ${layer.size} bytes`,
      );
    } finally {
      front.setBlobBehaviour(layer.digest, 'normal');
    }
  });

  it('fails a stalled blob with the idle body timeout', async () => {
    const h = harness(front.url, readPat, { bodyTimeoutMs: 500 });
    const layer = seedManifestFor(seedImage(seed, 'acme/app', 'v1.1.0'), 'arm64').layers[0];
    front.setBlobBehaviour(layer.digest, 'stall-after:100');
    try {
      const blob = (await h.client.getBlob('acme/app', parseDigest(layer.digest))) as UpstreamBlob;
      await expect(drain(blob)).rejects.toMatchObject({ reason: 'timeout' });
      expect(String(h.errorLines()[0].msg)).toContain('raise UPSTREAM_BODY_TIMEOUT_MS');
    } finally {
      front.setBlobBehaviour(layer.digest, 'normal');
    }
  });

  it('ends a manifest the upstream trickles at 1 byte/s at the overall deadline, as an upstream timeout', async () => {
    // The idle body timeout never fires (a byte comes every second): only the deadline ends it.
    const h = harness(front.url, readPat, { bodyTimeoutMs: 5_000, manifestDeadlineMs: 1_500 });
    const manifest = (await h.client.getManifest('acme/app', 'v1.0.0')) as UpstreamManifest;
    front.setBlobBehaviour(manifest.digest, 'trickle:1');
    const started = Date.now();
    try {
      await expect(h.client.getManifest('acme/app', 'v1.0.0')).rejects.toMatchObject({ reason: 'timeout' });
      await expect(h.client.getManifest('acme/app', manifest.digest)).rejects.toMatchObject({
        reason: 'timeout',
      });
    } finally {
      front.setBlobBehaviour(manifest.digest, 'normal');
    }
    // Each gave up near its deadline, not after the ~${manifest.size} s the trickle would take.
    expect(Date.now() - started).toBeLessThan(manifest.size * 1_000);
    expect(await h.failures('timeout')).toBe(2);
    const lines = h.errorLines().map((l) => String(l.msg));
    expect(lines).toHaveLength(2);
    expect(lines[0]).toContain('within 1500 ms');
    expect(lines[0]).toContain('raise UPSTREAM_MANIFEST_DEADLINE_MS');
    // The upstream is fine again once it stops trickling.
    await expect(h.client.getManifest('acme/app', 'v1.0.0')).resolves.toMatchObject({ found: true });
  }, 30_000);

  it("lists every tag, following Forgejo's Link to the extra empty page", async () => {
    const h = harness(front.url, readPat);
    expect(await h.client.listAllTags('acme/app', { pageSize: 2 })).toEqual({
      found: true,
      name: 'acme/app',
      tags: seed.tags['acme/app'],
    });
    expect(front.countRequests((r: FrontRequestRecord) => r.kind === 'tags')).toBe(3);
    expect(await h.client.listTags('acme/app', { n: 1, last: 'latest' })).toEqual({
      found: true,
      name: 'acme/app',
      tags: ['v1.0.0'],
      next: { last: 'v1.0.0', n: 1 },
    });
    await expect(h.client.listAllTags('acme/nothing')).resolves.toEqual({
      found: false,
      code: 'NAME_UNKNOWN',
    });
  });
});
