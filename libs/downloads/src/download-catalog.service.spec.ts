import { ManualClock } from '@gatehouse/observability';
import type { UpstreamPackageFile, UpstreamPackageVersion, UpstreamRelease } from '@gatehouse/upstream';
import { UpstreamError, UpstreamUnavailableError } from '@gatehouse/upstream';
import { DownloadCatalog, DownloadUpstream } from './download-catalog.service';

/** A typed upstream: answers from a table, counts questions, fails on demand. */
class FakeDownloadUpstream implements DownloadUpstream {
  releases = new Map<string, UpstreamRelease[] | null>();
  asked: string[] = [];
  failWith: Error | null = null;
  gate: Promise<void> | null = null;

  async listReleases(owner: string, repo: string): Promise<UpstreamRelease[] | null> {
    this.asked.push(`${owner}/${repo}`);
    if (this.gate) await this.gate;
    if (this.failWith) throw this.failWith;
    return this.releases.get(`${owner}/${repo}`) ?? null;
  }

  async listPackageVersions(owner: string, name: string): Promise<UpstreamPackageVersion[] | null> {
    this.asked.push(`v:${owner}/${name}`);
    return name.toLowerCase() === 'cli' ? [{ version: '1.0-RC1', createdAt: '2026-01-01T00:00:00Z' }] : null;
  }

  async listPackageFiles(): Promise<UpstreamPackageFile[] | null> {
    return null;
  }
}

const release = (tag: string) => ({ tag }) as UpstreamRelease;
const upstreamDown = () => new UpstreamUnavailableError('unreachable', 'upstream down');

describe('DownloadCatalog', () => {
  let upstream: FakeDownloadUpstream;
  let clock: ManualClock;
  let catalog: DownloadCatalog;

  beforeEach(() => {
    upstream = new FakeDownloadUpstream();
    upstream.releases.set('acme/tool', [release('v1')]);
    clock = new ManualClock();
    catalog = new DownloadCatalog(upstream, clock, { ttlMs: 1000, staleMaxMs: 5000, maxEntries: 2 });
  });

  it('keeps an answer for the TTL, then asks again', async () => {
    await catalog.releases('acme', 'tool');
    clock.advance(999);
    await catalog.releases('acme', 'tool');
    expect(upstream.asked).toHaveLength(1);
    clock.advance(1);
    upstream.releases.set('acme/tool', [release('v2')]);
    expect((await catalog.releases('acme', 'tool')).value).toEqual([release('v2')]);
    expect(upstream.asked).toHaveLength(2);
  });

  it('asks once for concurrent questions about one key', async () => {
    let open!: () => void;
    upstream.gate = new Promise((resolve) => (open = resolve));
    const answers = Promise.all([1, 2, 3].map(() => catalog.releases('acme', 'tool')));
    open();
    expect((await answers).map((a) => a.value)).toEqual([[release('v1')], [release('v1')], [release('v1')]]);
    expect(upstream.asked).toHaveLength(1);
  });

  it('serves a known answer marked stale while the upstream fails, within the stale bound only', async () => {
    await catalog.releases('acme', 'tool');
    upstream.failWith = upstreamDown();
    clock.advance(6000);
    expect(await catalog.releases('acme', 'tool')).toEqual({
      value: [release('v1')],
      stale: { ageSeconds: 6 },
    });
    clock.advance(1);
    await expect(catalog.releases('acme', 'tool')).rejects.toBeInstanceOf(UpstreamError);
  });

  it('never answers stale for a failure that is not an upstream failure', async () => {
    await catalog.releases('acme', 'tool');
    upstream.failWith = new Error('a bug');
    clock.advance(1500);
    await expect(catalog.releases('acme', 'tool')).rejects.toThrow('a bug');
  });

  it('keeps the most recently used answers when full', async () => {
    upstream.releases.set('acme/a', [release('a')]);
    upstream.releases.set('acme/b', [release('b')]);
    await catalog.releases('acme', 'tool');
    await catalog.releases('acme', 'a');
    await catalog.releases('acme', 'tool');
    await catalog.releases('acme', 'b');
    upstream.asked = [];
    await catalog.releases('acme', 'tool');
    await catalog.releases('acme', 'a');
    expect(upstream.asked).toEqual(['acme/a']);
  });

  it('keeps package version lists by lowercase name, and gives a preview the published names', async () => {
    await catalog.packageVersions('acme', 'cli');
    await catalog.packageVersions('ACME', 'CLI');
    expect(upstream.asked).toEqual(['v:acme/cli']);
    await expect(catalog.published('packages', 'acme', 'cli')).resolves.toEqual(['1.0-RC1']);
    await expect(catalog.published('packages', 'acme', 'nope')).resolves.toBeNull();
    await expect(catalog.published('releases', 'acme', 'tool')).resolves.toEqual(['v1']);
  });
});
