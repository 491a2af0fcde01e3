import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { ManualClock } from '@gatehouse/observability';
import { computeDigest, MEDIA_TYPES } from '@gatehouse/oci';
import { ManifestFetchTrace } from './manifest-fetch.trace';
import { ManifestSource } from './manifest.source';
import { ManifestStore } from './manifest-store.service';
import { PullThroughMetrics } from './pull-through-metrics.interface';
import { PullThroughService } from './pull-through.service';
import { FetchedManifest, ManifestHead, UpstreamSource } from './upstream-source.interface';

/** An in-memory upstream with request counting and an on/off switch. */
class FakeUpstream implements UpstreamSource {
  manifests = new Map<string, FetchedManifest>();
  tagMap = new Map<string, string>();
  /** Listed in tags/list on top of tagMap's keys, without a manifest (a broken upstream). */
  extraListed: string[] = [];
  calls: string[] = [];
  down = false;

  add(body: object, mediaType: string, tag?: string): string {
    const buf = Buffer.from(JSON.stringify(body));
    const digest = computeDigest(buf);
    this.manifests.set(digest, { body: buf, mediaType, digest });
    if (tag) this.tagMap.set(tag, digest);
    return digest;
  }
  private check(call: string): void {
    this.calls.push(call);
    if (this.down) throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
  }
  async getManifest(_name: string, ref: string): Promise<FetchedManifest | null> {
    this.check(`GET manifest ${ref}`);
    return this.manifests.get(this.tagMap.get(ref) ?? ref) ?? null;
  }
  async headManifest(_name: string, ref: string): Promise<ManifestHead | null> {
    this.check(`HEAD manifest ${ref}`);
    const m = this.manifests.get(this.tagMap.get(ref) ?? ref);
    return m ? { digest: m.digest, mediaType: m.mediaType, size: m.body.length } : null;
  }
  async getBlob(): Promise<null> {
    throw new Error('not used');
  }
  async headBlob(): Promise<null> {
    throw new Error('not used');
  }
  async listTags(): Promise<string[]> {
    this.check('tags');
    return [...this.extraListed, ...[...this.tagMap.keys()].sort()];
  }
}

const blob = (c: string) => 'sha256:' + c.repeat(64);

describe('PullThroughService', () => {
  let dir: string;
  let upstream: FakeUpstream;
  let clock: ManualClock;
  let service: PullThroughService;
  let v1: string;
  let v1child: string;
  let v2: string;
  let invalidTags: Array<{ repository: string; tags: string[] }>;

  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'gatehouse-pull-'));
    upstream = new FakeUpstream();
    clock = new ManualClock();
    const image = (layers: string[]) =>
      upstream.add(
        {
          schemaVersion: 2,
          mediaType: MEDIA_TYPES.OCI_MANIFEST,
          config: { digest: blob('c'), size: 1 },
          layers: layers.map((l) => ({ digest: blob(l), size: 1 })),
        },
        MEDIA_TYPES.OCI_MANIFEST,
      );
    v1child = image(['a', 'b']);
    v1 = upstream.add(
      {
        schemaVersion: 2,
        mediaType: MEDIA_TYPES.OCI_INDEX,
        manifests: [{ digest: v1child, size: 1, mediaType: MEDIA_TYPES.OCI_MANIFEST }],
      },
      MEDIA_TYPES.OCI_INDEX,
      'v1.0.0',
    );
    const v2child = image(['a', 'd']);
    v2 = upstream.add(
      {
        schemaVersion: 2,
        mediaType: MEDIA_TYPES.OCI_INDEX,
        manifests: [{ digest: v2child, size: 1, mediaType: MEDIA_TYPES.OCI_MANIFEST }],
      },
      MEDIA_TYPES.OCI_INDEX,
      'v1.1.0',
    );
    const store = new ManifestStore({ dir, memoryMaxBytes: 1024 * 1024 });
    await store.init();
    invalidTags = [];
    const metrics: PullThroughMetrics = {
      invalidUpstreamTags: (repository, tags) => invalidTags.push({ repository, tags }),
    };
    service = new PullThroughService(
      upstream,
      store,
      clock,
      { tagTtlMs: 60_000, tagStaleMaxMs: 3_600_000, maxTagEntries: 1000 },
      metrics,
    );
  });

  afterEach(() => fs.rm(dir, { recursive: true, force: true }));

  it('resolves a tag once within the TTL, then revalidates with a HEAD', async () => {
    expect(await service.resolveTag('acme/app', 'v1.0.0')).toEqual({ digest: v1 });
    expect(await service.resolveTag('acme/app', 'v1.0.0')).toEqual({ digest: v1 });
    expect(upstream.calls).toEqual(['GET manifest v1.0.0']);
    clock.advance(61_000);
    expect(await service.resolveTag('acme/app', 'v1.0.0')).toEqual({ digest: v1 });
    expect(upstream.calls).toEqual(['GET manifest v1.0.0', 'HEAD manifest v1.0.0']);
  });

  it('follows a moved tag', async () => {
    await service.resolveTag('acme/app', 'v1.0.0');
    upstream.tagMap.set('v1.0.0', v2);
    clock.advance(61_000);
    expect(await service.resolveTag('acme/app', 'v1.0.0')).toEqual({ digest: v2 });
  });

  it('serves the last known digest, marked stale, while upstream is down, within the bound', async () => {
    await service.resolveTag('acme/app', 'v1.0.0');
    upstream.down = true;
    clock.advance(120_000);
    const stale = await service.resolveTag('acme/app', 'v1.0.0');
    expect(stale?.digest).toBe(v1);
    expect(stale?.stale?.ageSeconds).toBe(120);
    clock.advance(3_600_000);
    await expect(service.resolveTag('acme/app', 'v1.0.0')).rejects.toThrow(/ECONNREFUSED/);
  });

  it('computes the closure of an index: children, configs and layers', async () => {
    const closure = await service.closure('acme/app', v1);
    expect([...closure.keys()].sort()).toEqual([v1, v1child, blob('c'), blob('a'), blob('b')].sort());
    expect(closure.get(blob('a'))).toBe(1);
  });

  it('finds a digest reachable only from an admitted tag, and refuses one reachable only from another', async () => {
    const onlyV1 = (t: string) => t === 'v1.0.0';
    expect(await service.findReachingTag('acme/app', blob('b'), onlyV1)).toEqual({ tag: 'v1.0.0', size: 1 });
    expect((await service.findReachingTag('acme/app', blob('a'), onlyV1))?.tag).toBe('v1.0.0');
    upstream.calls = [];
    expect(await service.findReachingTag('acme/app', blob('d'), onlyV1)).toBeNull();
    // The unreachable digest itself was never asked of upstream.
    expect(upstream.calls.some((c) => c.includes(blob('d')))).toBe(false);
  });

  it('serves manifests by digest from disk after a restart without asking upstream', async () => {
    await service.resolveTag('acme/app', 'v1.0.0');
    await service.closure('acme/app', v1);
    const store2 = new ManifestStore({ dir, memoryMaxBytes: 1024 * 1024 });
    const restarted = new PullThroughService(upstream, store2, clock, {
      tagTtlMs: 60_000,
      tagStaleMaxMs: 0,
      maxTagEntries: 1000,
    });
    upstream.down = true;
    const m = await restarted.getManifest('acme/app', v1child);
    expect(m?.digest).toBe(v1child);
  });

  it('drops a damaged manifest file instead of serving it', async () => {
    await service.resolveTag('acme/app', 'v1.0.0');
    const hex = v1.slice(7);
    const file = path.join(dir, 'sha256', hex.slice(0, 2), hex);
    await fs.writeFile(file, `${MEDIA_TYPES.OCI_INDEX}\n{"tampered":true}`);
    const fresh = new ManifestStore({ dir, memoryMaxBytes: 1024 * 1024 });
    expect(await fresh.get(v1)).toBeNull();
    await expect(fs.stat(file)).rejects.toThrow();
  });

  it('shares one upstream round trip between concurrent resolutions of a tag', async () => {
    await Promise.all(Array.from({ length: 10 }, () => service.resolveTag('acme/app', 'v1.1.0')));
    expect(upstream.calls).toEqual(['GET manifest v1.1.0']);
  });

  describe('cache result of the served manifest', () => {
    const serve = async (resolve: (trace: ManifestFetchTrace) => Promise<string>) => {
      const trace = new ManifestFetchTrace();
      const digest = await resolve(trace);
      return (await new ManifestSource(service).get('acme/app', digest, trace)).source;
    };
    const byTag = (tag: string) => async (trace: ManifestFetchTrace) =>
      (await service.resolveTag('acme/app', tag, trace))!.digest;

    it('is a miss when resolving the tag fetched it, a hit once stored, a hit after a revalidating HEAD', async () => {
      expect(await serve(byTag('v1.0.0'))).toBe('miss');
      expect(await serve(byTag('v1.0.0'))).toBe('hit');
      clock.advance(61_000);
      expect(await serve(byTag('v1.0.0'))).toBe('hit');
      expect(upstream.calls).toEqual(['GET manifest v1.0.0', 'HEAD manifest v1.0.0']);
    });

    it('is joined for requests that waited on another request fetch', async () => {
      const results = await Promise.all([
        serve(byTag('v1.1.0')),
        serve(byTag('v1.1.0')),
        serve(byTag('v1.1.0')),
      ]);
      expect(results).toEqual(['miss', 'joined', 'joined']);
      expect(upstream.calls).toEqual(['GET manifest v1.1.0']);
    });

    it('is a miss for a child manifest fetched while its reachability was proven', async () => {
      const reach = (trace: ManifestFetchTrace) =>
        service.findReachingTag('acme/app', v1child, (t) => t === 'v1.0.0', trace).then(() => v1child);
      expect(await serve(reach)).toBe('miss');
      expect(await serve(reach)).toBe('hit');
    });
  });

  it('skips tags upstream lists that are not valid OCI tags, reports them, and still finds digests', async () => {
    upstream.extraListed = ['-not-a-tag', 'has space'];
    expect((await service.listTags('acme/app'))?.tags).toEqual(['v1.0.0', 'v1.1.0']);
    expect(invalidTags).toEqual([{ repository: 'acme/app', tags: ['-not-a-tag', 'has space'] }]);
    expect(await service.findReachingTag('acme/app', blob('d'), () => true)).toEqual({
      tag: 'v1.1.0',
      size: 1,
    });
    expect(upstream.calls.filter((c) => c.includes('not-a-tag') || c.includes('space'))).toEqual([]);
  });
});
