import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { ManualClock } from '@gatehouse/observability';
import { computeDigest, MEDIA_TYPES } from '@gatehouse/oci';
import { ManifestFetchTrace } from './manifest-fetch.trace';
import { ManifestStore } from './manifest-store.service';
import { PullThroughService } from './pull-through.service';
import { ReferrersSource } from './referrers.source';
import { FetchedManifest, UpstreamSource } from './upstream-source.interface';

const hex = 'cd'.repeat(32);
const subject = `sha256:${hex}`;

class Upstream implements UpstreamSource {
  manifests = new Map<string, FetchedManifest>();
  tags = new Map<string, string>();
  referrersApi: Buffer | null = null;
  calls: string[] = [];
  down = false;
  add(body: object, tag?: string): FetchedManifest {
    const buf = Buffer.from(JSON.stringify(body));
    const m = { body: buf, mediaType: (body as { mediaType: string }).mediaType, digest: computeDigest(buf) };
    this.manifests.set(m.digest, m);
    if (tag) this.tags.set(tag, m.digest);
    return m;
  }
  private call(what: string) {
    this.calls.push(what);
    if (this.down) throw new Error('connect ECONNREFUSED');
  }
  async getManifest(_n: string, ref: string) {
    this.call(`GET ${ref}`);
    return this.manifests.get(this.tags.get(ref) ?? ref) ?? null;
  }
  async headManifest(_n: string, ref: string) {
    this.call(`HEAD ${ref}`);
    const m = this.manifests.get(this.tags.get(ref) ?? ref);
    return m ? { digest: m.digest, mediaType: m.mediaType, size: m.body.length } : null;
  }
  async getBlob(): Promise<null> {
    throw new Error('not used');
  }
  async headBlob(): Promise<null> {
    throw new Error('not used');
  }
  async listTags() {
    return [...this.tags.keys()];
  }
}

/** With the referrers API, as an upstream may offer it. */
class UpstreamWithApi extends Upstream {
  async listReferrers(_n: string, digest: string) {
    this.calls.push(`referrers ${digest}`);
    return this.referrersApi;
  }
}

describe('ReferrersSource', () => {
  let dir: string;
  let clock: ManualClock;

  const make = async (upstream: UpstreamSource) => {
    const store = new ManifestStore({ dir, memoryMaxBytes: 1 << 20 });
    await store.init();
    const opts = { tagTtlMs: 60_000, tagStaleMaxMs: 60_000, maxTagEntries: 100 };
    const pull = new PullThroughService(upstream, store, clock, opts);
    return new ReferrersSource(pull, upstream, clock, {
      tagTtlMs: 60_000,
      tagStaleMaxMs: 60_000,
      maxEntries: 10,
    });
  };

  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'gatehouse-referrers-'));
    clock = new ManualClock();
  });
  afterEach(() => fs.rm(dir, { recursive: true, force: true }));

  const sig = {
    mediaType: MEDIA_TYPES.OCI_MANIFEST,
    config: {
      mediaType: 'application/vnd.dev.cosign.artifact.sig.v1+json',
      digest: `sha256:${'1'.repeat(64)}`,
      size: 2,
    },
  };

  it("prefers the upstream's referrers API when it answers", async () => {
    const upstream = new UpstreamWithApi();
    upstream.add(sig, `sha256-${hex}.sig`);
    upstream.referrersApi = Buffer.from(
      JSON.stringify({
        manifests: [
          {
            mediaType: MEDIA_TYPES.OCI_MANIFEST,
            digest: 'sha256:' + 'e'.repeat(64),
            size: 3,
            artifactType: 't',
          },
        ],
      }),
    );
    const list = await (await make(upstream)).list('acme/app', subject, new ManifestFetchTrace());
    expect(list.origin).toBe('upstream_api');
    expect(list.manifests.map((m) => m.artifactType)).toEqual(['t']);
    expect(upstream.calls).toEqual([`referrers ${subject}`]);
  });

  it('falls back to the artifact tags when the API and the tag-schema index are absent, and keeps the answer for the tag TTL', async () => {
    const upstream = new UpstreamWithApi();
    const s = upstream.add(sig, `sha256-${hex}.sig`);
    const source = await make(upstream);
    const first = await source.list('acme/app', subject, new ManifestFetchTrace());
    expect(first).toEqual({
      origin: 'artifact_tags',
      manifests: [
        { mediaType: s.mediaType, digest: s.digest, size: s.body.length, artifactType: sig.config.mediaType },
      ],
    });
    upstream.calls = [];
    clock.advance(59_000);
    await source.list('acme/app', subject, new ManifestFetchTrace());
    expect(upstream.calls).toEqual([]);
    // Past the TTL with upstream down: the last list, marked stale, until the stale bound.
    upstream.down = true;
    clock.advance(2_000);
    const stale = await source.list('acme/app', subject, new ManifestFetchTrace());
    expect(stale.stale).toEqual({ ageSeconds: 61 });
    clock.advance(60_000);
    await expect(source.list('acme/app', subject, new ManifestFetchTrace())).rejects.toThrow('ECONNREFUSED');
  });

  it('remembers for the tag TTL that a repository has no referrers API, for every subject there', async () => {
    const upstream = new UpstreamWithApi();
    const other = `sha256:${'ef'.repeat(32)}`;
    const source = await make(upstream);
    await source.list('acme/app', subject, new ManifestFetchTrace());
    await source.list('acme/app', other, new ManifestFetchTrace());
    await source.list('acme/tool', subject, new ManifestFetchTrace());
    expect(upstream.calls.filter((c) => c.startsWith('referrers'))).toEqual([
      `referrers ${subject}`,
      `referrers ${subject}`,
    ]);
    // Past the TTL the API is asked again (an upstream may have gained it).
    upstream.calls = [];
    clock.advance(60_000);
    upstream.referrersApi = Buffer.from(JSON.stringify({ schemaVersion: 2, manifests: [] }));
    const list = await source.list('acme/app', other, new ManifestFetchTrace());
    expect([list.origin, upstream.calls[0]]).toEqual(['upstream_api', `referrers ${other}`]);
  });

  it('leaves out a manifest at an artifact tag that names another subject', async () => {
    const upstream = new Upstream();
    upstream.add(
      {
        ...sig,
        subject: { mediaType: MEDIA_TYPES.OCI_MANIFEST, digest: `sha256:${'9'.repeat(64)}`, size: 1 },
      },
      `sha256-${hex}.sig`,
    );
    const att = upstream.add(
      {
        ...sig,
        artifactType: 'application/vnd.dsse.envelope.v1+json',
        subject: { mediaType: MEDIA_TYPES.OCI_MANIFEST, digest: subject, size: 1 },
      },
      `sha256-${hex}.att`,
    );
    const list = await (await make(upstream)).list('acme/app', subject, new ManifestFetchTrace());
    expect(list.manifests.map((m) => m.digest)).toEqual([att.digest]);
  });

  it('answers a sha512 subject with no referrers, asking nothing', async () => {
    const upstream = new Upstream();
    const list = await (
      await make(upstream)
    ).list('acme/app', `sha512:${'a'.repeat(128)}`, new ManifestFetchTrace());
    expect(list).toEqual({ manifests: [], origin: 'none' });
    expect(upstream.calls).toEqual([]);
  });
});
