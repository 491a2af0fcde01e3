import type { UpstreamConfig } from '@gatehouse/config';
import { Clock, createCapturingLogger, MetricsService } from '@gatehouse/observability';
import { ForgejoFront, generatePat, startForgejoFront } from '@gatehouse/testing/upstream';
import { UpstreamAuthError } from './upstream.error';
import { UpstreamRegistryClient } from './upstream-registry.client';

// The generic package list on the Forgejo front: one item per version of every package whose name
// contains `q`, paged by 50 at most, newest first; the client keeps the exact name.

const PAT = generatePat('pkg-list');
const NO_SCOPE = generatePat('pkg-list-noscope');
const OUTSIDER = generatePat('pkg-list-outsider');

describe('UpstreamDownloadFetcher.listPackageVersions on the Forgejo front', () => {
  let front: ForgejoFront;
  const clients: UpstreamRegistryClient[] = [];

  const client = (token: string) => {
    const config: UpstreamConfig = {
      enabled: true,
      baseUrl: front.url,
      token,
      username: '',
      connectTimeoutMs: 2000,
      headersTimeoutMs: 5000,
      bodyTimeoutMs: 5000,
      manifestDeadlineMs: 60_000,
      maxConnections: 4,
      retries: 0,
      tagsCaseInsensitive: true,
      kind: 'forgejo',
      sendMemberTag: false,
      missing: [],
    };
    const c = new UpstreamRegistryClient(
      config,
      createCapturingLogger('error').logger,
      new MetricsService(),
      new Clock(),
      { retryBaseDelayMs: 5 },
    );
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    front = await startForgejoFront({
      // The package API never reaches the registry behind the front.
      upstreamUrl: 'http://127.0.0.1:9',
      knownOwners: ['acme', 'hidden'],
      privateOwners: ['hidden'],
      userOwners: { outsider: ['acme'] },
      tokens: {
        [PAT]: { scopes: ['read:package'] },
        [NO_SCOPE]: { scopes: ['read:repository'] },
        [OUTSIDER]: { scopes: ['read:package'], user: 'outsider' },
      },
    });
    const base = Date.UTC(2026, 0, 1);
    // 60 versions of acme/cli (the first upload fixes the case: `1.0.7-RC1`), uploaded in order,
    // and two packages whose names contain "cli".
    for (let i = 0; i < 60; i++) {
      const version = i === 7 ? '1.0.7-RC1' : `1.0.${i}`;
      front.addPackageFile(
        'acme/cli',
        version,
        'cli.tar.gz',
        Buffer.from(`v${i}`),
        new Date(base + i * 1000),
      );
    }
    front.addPackageFile(
      'acme/cli-tools',
      '9.9.9',
      'tools.tar.gz',
      Buffer.from('t'),
      new Date(base + 99_000),
    );
    front.addPackageFile('acme/CLIX', '1.0.0', 'x', Buffer.from('x'), new Date(base + 98_000));
    front.addPackageFile('hidden/cli', '1.0.0', 'x', Buffer.from('x'));
  });

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await front?.stop();
  });

  it('lists every version of exactly that package, newest first, as uploaded, over pages', async () => {
    front.resetCounts();
    const listed = await client(PAT).downloads.listPackageVersions('acme', 'cli');
    expect(listed.found).toBe(true);
    const versions = listed.found ? listed.versions.map((v) => v.version) : [];
    expect(versions).toHaveLength(60);
    expect(versions.slice(0, 2)).toEqual(['1.0.59', '1.0.58']);
    expect(versions).toContain('1.0.7-RC1');
    expect(versions).not.toContain('9.9.9');
    expect(listed.found && listed.versions[0].createdAt).toBe(
      new Date(Date.UTC(2026, 0, 1) + 59_000).toISOString(),
    );
    // 62 items contain "cli" (60 + cli-tools + CLIX): two pages of 50.
    const asked = front.requests.filter((r) => r.kind === 'package-versions');
    expect(asked.map((r) => r.query)).toEqual([
      '?type=generic&q=cli&limit=50&page=1',
      '?type=generic&q=cli&limit=50&page=2',
    ]);
    // Names compare in lowercase, as Forgejo's lower_name.
    const upper = await client(PAT).downloads.listPackageVersions('acme', 'CLIX');
    expect(upper.found && upper.versions).toEqual([{ version: '1.0.0', createdAt: expect.any(String) }]);
  });

  it('answers not-found for an unknown owner or a package with no version', async () => {
    const c = client(PAT);
    await expect(c.downloads.listPackageVersions('nobody', 'cli')).resolves.toEqual({ found: false });
    await expect(c.downloads.listPackageVersions('acme', 'cl')).resolves.toEqual({ found: false });
  });

  it('names the fix when the service token lacks read:package or the owner is not readable', async () => {
    const noScope = client(NO_SCOPE).downloads.listPackageVersions('acme', 'cli');
    await expect(noScope).rejects.toBeInstanceOf(UpstreamAuthError);
    await expect(noScope).rejects.toMatchObject({ reason: 'token_missing_scope' });
    await expect(noScope).rejects.toThrow(/read:package/);
    const outsider = client(OUTSIDER).downloads.listPackageVersions('hidden', 'cli');
    await expect(outsider).rejects.toMatchObject({ reason: 'token_missing_scope' });
    await expect(outsider).rejects.toThrow(/hidden/);
  });

  it('pages as Forgejo does: 30 by default, X-Total-Count, Link, and only the asked type', async () => {
    const get = (q: string) =>
      fetch(`${front.url}/api/v1/packages/acme?${q}`, { headers: { authorization: `token ${PAT}` } });
    const first = await get('type=generic&q=cli');
    const items = (await first.json()) as Array<{ name: string; version: string; type: string }>;
    expect(items).toHaveLength(30);
    expect(first.headers.get('x-total-count')).toBe('62');
    expect(first.headers.get('link')).toContain('page=2&limit=30>; rel="next"');
    expect(first.headers.get('link')).toContain('page=3&limit=30>; rel="last"');
    // Newest first: the two other packages were uploaded last.
    expect(items.slice(0, 2).map((i) => i.name)).toEqual(['cli-tools', 'CLIX']);
    const last = await get('type=generic&q=cli&page=3');
    expect((await last.json()) as unknown[]).toHaveLength(2);
    expect(last.headers.get('link')).not.toContain('rel="next"');
    expect((await (await get('type=container&q=cli')).json()) as unknown[]).toEqual([]);
  });
});
