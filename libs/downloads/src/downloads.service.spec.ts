import { Readable } from 'node:stream';
import type { AuditEventInput, AuditService } from '@gatehouse/audit';
import type { Entitlement, EntitlementService, TagMatch } from '@gatehouse/entitlements';
import { MetricsService } from '@gatehouse/observability';
import type { UpstreamRegistryClient, UpstreamRelease } from '@gatehouse/upstream';
import { DownloadAudit } from './download-audit';
import type { DownloadCatalog } from './download-catalog.service';
import type { DownloadObject, DownloadStore } from './download-store';
import {
  DownloadCaller,
  DownloadRequest,
  DownloadsService,
  PACKAGE_VERSIONS_WITH_FILES,
} from './downloads.service';

type Fake<T, K extends keyof T> = jest.Mocked<Pick<T, K>>;

/** Typed fakes of every edge DownloadsService reaches (immich's newTestService shape). */
function newDownloadsService() {
  const entitlements: Fake<EntitlementService, 'tagAllowed' | 'expiryWarning' | 'keyExpiryWarning'> = {
    expiryWarning: jest.fn().mockReturnValue(null),
    keyExpiryWarning: jest.fn().mockReturnValue(null),
    // Exact rules only (package versions in lowercase, as the real matcher judges them): enough
    // to tell the service's decisions apart from the matcher's.
    tagAllowed: jest.fn((e: Parameters<EntitlementService['tagAllowed']>[0], tag: string) => {
      const judged = e.kind === 'packages' ? tag.toLowerCase() : tag;
      const match: TagMatch = { rule: judged, kind: 'exact', tag: judged };
      return e.tagRules.includes(judged) ? match : null;
    }),
  };
  const catalog: Fake<DownloadCatalog, 'releases' | 'packageFiles' | 'packageVersions'> = {
    releases: jest.fn(),
    packageFiles: jest.fn(),
    packageVersions: jest.fn(),
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

  it('lists only the entitled versions of a package, judged in lowercase, with their files', async () => {
    const { sut, catalog, events } = newDownloadsService();
    catalog.packageVersions.mockResolvedValue({
      value: [
        { version: '2.0.0', createdAt: '2026-03-01T00:00:00Z' },
        { version: '1.5.0-RC1', createdAt: '2026-02-01T00:00:00Z' },
        { version: '1.4.0', createdAt: '2026-01-01T00:00:00Z' },
      ],
      stale: null,
    });
    catalog.packageFiles.mockImplementation((_o: string, _n: string, version: string) =>
      Promise.resolve({
        value: [{ name: `cli ${version}.tgz`, size: 9, sha256: 'd'.repeat(64) }],
        stale: null,
      }),
    );
    const who = caller('packages', 'acme/cli', ['1.4.0', '1.5.0-rc1']);
    const reply = await sut.listPackage(who, 'acme', 'cli', req());
    expect(reply.body).toEqual({
      owner: 'acme',
      name: 'cli',
      versions: [
        {
          version: '1.5.0-RC1',
          publishedAt: '2026-02-01T00:00:00Z',
          files: [
            {
              name: 'cli 1.5.0-rc1.tgz',
              size: 9,
              sha256: 'd'.repeat(64),
              url: 'https://gw.example/downloads/packages/acme/cli/1.5.0-RC1/cli%201.5.0-rc1.tgz',
            },
          ],
        },
        expect.objectContaining({ version: '1.4.0' }),
      ],
    });
    // The unentitled version's files were never asked for.
    expect(catalog.packageFiles.mock.calls.map((c) => c[2])).toEqual(['1.5.0-rc1', '1.4.0']);
    expect(events).toMatchObject([
      { action: 'download.list', outcome: 'allowed', repository: 'packages:acme/cli', details: { count: 2 } },
    ]);
  });

  it('lists the files of the newest versions only, and refuses an unentitled or unknown package alike', async () => {
    const { sut, catalog, events } = newDownloadsService();
    const many = Array.from({ length: 25 }, (_, i) => ({ version: `1.0.${24 - i}`, createdAt: '' }));
    catalog.packageVersions.mockResolvedValue({ value: many, stale: { ageSeconds: 3 } });
    catalog.packageFiles.mockResolvedValue({ value: [], stale: null });
    const all = caller(
      'packages',
      'acme/cli',
      many.map((v) => v.version),
    );
    const body = (await sut.listPackage(all, 'acme', 'cli', req())).body as {
      versions: Array<{ files: unknown[] | null }>;
    };
    expect(body.versions).toHaveLength(25);
    expect(body.versions.filter((v) => v.files !== null)).toHaveLength(PACKAGE_VERSIONS_WITH_FILES);
    expect(catalog.packageFiles).toHaveBeenCalledTimes(PACKAGE_VERSIONS_WITH_FILES);

    catalog.packageVersions.mockResolvedValue({ value: null, stale: null });
    const unknown = sut.listPackage(caller('packages', 'acme/nope', ['*']), 'acme', 'nope', req());
    const unentitled = sut.listPackage(caller('packages', 'acme/cli', null), 'acme', 'cli', req());
    await expect(unknown).rejects.toMatchObject({ code: 'NAME_UNKNOWN', message: 'not found' });
    await expect(unentitled).rejects.toMatchObject({ code: 'NAME_UNKNOWN', message: 'not found' });
    expect(
      events
        .slice(1)
        .map((e) => e.reason)
        .sort(),
    ).toEqual(['repository_not_entitled', 'repository_unknown_upstream']);
  });
});
