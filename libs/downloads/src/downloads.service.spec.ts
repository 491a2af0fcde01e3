import { Readable } from 'node:stream';
import type { AuditEventInput, AuditService } from '@gatehouse/audit';
import type { Entitlement, EntitlementService } from '@gatehouse/entitlements';
import { MetricsService } from '@gatehouse/observability';
import type { UpstreamRegistryClient, UpstreamRelease } from '@gatehouse/upstream';
import { DownloadAudit } from './download-audit';
import type { DownloadCatalog } from './download-catalog.service';
import type { DownloadObject, DownloadStore } from './download-store';
import { DownloadCaller, DownloadRequest, DownloadsService } from './downloads.service';

type Fake<T, K extends keyof T> = jest.Mocked<Pick<T, K>>;

/** Typed fakes of every edge DownloadsService reaches (immich's newTestService shape). */
function newDownloadsService() {
  const entitlements: Fake<EntitlementService, 'tagAllowed' | 'expiryWarning' | 'keyExpiryWarning'> = {
    expiryWarning: jest.fn().mockReturnValue(null),
    keyExpiryWarning: jest.fn().mockReturnValue(null),
    // Exact rules only: enough to tell the service's decisions apart from the matcher's.
    tagAllowed: jest.fn((e: Pick<Entitlement, 'tagRules'>, tag: string) =>
      e.tagRules.includes(tag) ? { rule: tag, kind: 'exact' as const, tag } : null,
    ),
  };
  const catalog: Fake<DownloadCatalog, 'releases' | 'packageFiles'> = {
    releases: jest.fn(),
    packageFiles: jest.fn(),
  };
  const store: Fake<DownloadStore, 'knownSha256' | 'open'> = {
    knownSha256: jest.fn((o: Pick<DownloadObject, 'key' | 'revision' | 'sha256'>) => o.sha256),
    open: jest.fn(),
  };
  const events: AuditEventInput[] = [];
  const audit = new DownloadAudit(
    { record: (e: AuditEventInput) => events.push(e) } as unknown as AuditService,
    new MetricsService(),
  );
  const sut = new DownloadsService(
    entitlements as unknown as EntitlementService,
    catalog as unknown as DownloadCatalog,
    store as unknown as DownloadStore,
    audit,
    {} as UpstreamRegistryClient,
  );
  return { sut, entitlements, catalog, store, events };
}

function caller(kind: 'releases' | 'packages', name: string, tagRules: string[] | null): DownloadCaller {
  const entitlement = tagRules ? ({ kind, repository: name, tagRules } as Entitlement) : null;
  return { principal: { memberId: 'm1', username: 'alice' }, grant: { kind, name, entitlement } };
}

const req = (extra: Partial<DownloadRequest> = {}): DownloadRequest => ({
  method: 'GET',
  signal: new AbortController().signal,
  baseUrl: 'https://gw.example',
  ...extra,
});

const release = (tag: string, publishedAt: string, prerelease = false): UpstreamRelease => ({
  tag,
  name: tag,
  prerelease,
  publishedAt,
  assets: [{ name: 'tool bin', size: 4, uuid: `uuid-${tag}` }],
});
const RELEASES = [
  release('v2.0.0-rc1', '2026-03-01T00:00:00Z', true),
  release('v1.1.0', '2026-02-01T00:00:00Z'),
  release('v1.0.0', '2026-01-01T00:00:00Z'),
];

describe('DownloadsService', () => {
  it('answers an unentitled target with the 404 of an unknown one, asks nothing upstream, audits why', async () => {
    const { sut, catalog, events } = newDownloadsService();
    await expect(
      sut.releaseAsset(caller('releases', 'acme/tool', null), 'acme', 'tool', 'v1.0.0', 'tool bin', req()),
    ).rejects.toMatchObject({ code: 'NAME_UNKNOWN', message: 'not found' });
    expect(catalog.releases).not.toHaveBeenCalled();
    expect(events).toMatchObject([
      { action: 'download', outcome: 'denied', reason: 'repository_not_entitled', httpStatus: 404 },
    ]);
  });

  it('refuses an unentitled tag before asking for the release list', async () => {
    const { sut, catalog, events } = newDownloadsService();
    const who = caller('releases', 'acme/tool', ['v1.0.0']);
    await expect(sut.releaseAsset(who, 'acme', 'tool', 'v1.1.0', 'tool bin', req())).rejects.toMatchObject({
      code: 'NAME_UNKNOWN',
    });
    expect(catalog.releases).not.toHaveBeenCalled();
    expect(events[0]).toMatchObject({ reason: 'tag_not_entitled', repository: 'releases:acme/tool' });
  });

  it('never serves a grant for another target (a wiring error, not a 404)', async () => {
    const { sut, catalog } = newDownloadsService();
    const who = caller('packages', 'acme/tool', ['v1.0.0']);
    await expect(sut.releaseAsset(who, 'acme', 'tool', 'v1.0.0', 'tool bin', req())).rejects.toThrow(
      /grant is for packages:acme\/tool, not releases:acme\/tool/,
    );
    const other = caller('releases', 'acme/other', ['v1.0.0']);
    await expect(sut.listReleases(other, 'acme', 'tool', req())).rejects.toThrow(/not releases:acme\/tool/);
    expect(catalog.releases).not.toHaveBeenCalled();
  });

  it('lists only entitled releases, with URLs that survive any tag or file name', async () => {
    const { sut, catalog } = newDownloadsService();
    catalog.releases.mockResolvedValue({ value: RELEASES, stale: { ageSeconds: 7 } });
    const reply = await sut.listReleases(caller('releases', 'acme/tool', ['v1.0.0']), 'acme', 'tool', req());
    const body = reply.body as { releases: Array<{ tag: string; assets: Array<{ url: string }> }> };
    expect(body.releases.map((r) => r.tag)).toEqual(['v1.0.0']);
    expect(body.releases[0].assets[0].url).toBe(
      'https://gw.example/downloads/releases/acme/tool/v1.0.0/tool%20bin',
    );
    expect(reply.headers['Warning']).toMatch(/^299 /);
  });

  it('serves latest as the newest entitled stable release, HEAD from the metadata alone', async () => {
    const { sut, catalog, store, events } = newDownloadsService();
    catalog.releases.mockResolvedValue({ value: RELEASES, stale: null });
    const who = caller('releases', 'acme/tool', ['v1.0.0', 'v1.1.0', 'v2.0.0-rc1']);
    const reply = await sut.releaseAsset(who, 'acme', 'tool', 'latest', 'tool bin', req({ method: 'HEAD' }));
    expect(reply).toMatchObject({ status: 200, headers: { 'Content-Length': '4', ETag: '"uuid-v1.1.0"' } });
    expect(reply.headers['Content-Disposition']).toContain('tool bin');
    expect(store.open).not.toHaveBeenCalled();
    expect(events[0]).toMatchObject({ reference: 'v1.1.0/tool bin', details: { requestedTag: 'latest' } });
  });

  it('says on a download when the entitlement expires soon', async () => {
    const { sut, catalog, entitlements } = newDownloadsService();
    catalog.releases.mockResolvedValue({ value: RELEASES, stale: null });
    entitlements.expiryWarning.mockReturnValue(
      '299 - "your access to acme/tool expires on 2026-12-12T00:00:00Z"',
    );
    const who = caller('releases', 'acme/tool', ['v1.0.0']);
    const reply = await sut.releaseAsset(who, 'acme', 'tool', 'v1.0.0', 'tool bin', req({ method: 'HEAD' }));
    expect(reply.headers['Warning']).toBe('299 - "your access to acme/tool expires on 2026-12-12T00:00:00Z"');
    expect(entitlements.expiryWarning).toHaveBeenCalledWith(who.grant.entitlement);
    // The key's own expiry is a second header line.
    const key = { prefix: 'ghk_abcdefgh', expiresAt: new Date('2026-12-13T00:00:00Z') };
    entitlements.keyExpiryWarning.mockReturnValue(
      '299 - "your access key ghk_abcdefgh expires on 2026-12-13T00:00:00Z"',
    );
    const keyed = { ...who, principal: { ...who.principal, accessKey: key } };
    const both = await sut.releaseAsset(keyed, 'acme', 'tool', 'v1.0.0', 'tool bin', req({ method: 'HEAD' }));
    expect(both.headers['Warning']).toEqual([
      '299 - "your access to acme/tool expires on 2026-12-12T00:00:00Z"',
      '299 - "your access key ghk_abcdefgh expires on 2026-12-13T00:00:00Z"',
    ]);
    expect(entitlements.keyExpiryWarning).toHaveBeenLastCalledWith(key);
  });

  it('streams a package file by its stated sha256 and audits the bytes when it ends', async () => {
    const { sut, catalog, store, events } = newDownloadsService();
    const sha = 'c'.repeat(64);
    catalog.packageFiles.mockResolvedValue({
      value: [{ name: 'cli.tgz', size: 4, sha256: sha }],
      stale: null,
    });
    store.open.mockResolvedValue({
      source: 'hit',
      status: 200,
      size: 4,
      length: 4,
      sha256: sha,
      body: Readable.from([Buffer.from('data')]),
    });
    const who = caller('packages', 'acme/cli', ['1.4.0']);
    const reply = await sut.packageFile(who, 'acme', 'cli', '1.4.0', 'cli.tgz', req());
    expect(reply.headers).toMatchObject({ 'X-Checksum-Sha256': sha, 'Content-Length': '4' });
    const chunks: Buffer[] = [];
    for await (const c of reply.body as Readable) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).toString()).toBe('data');
    await new Promise((r) => setImmediate(r));
    expect(events).toMatchObject([{ outcome: 'allowed', bytes: 4, digest: `sha256:${sha}`, cache: 'hit' }]);
  });
});
