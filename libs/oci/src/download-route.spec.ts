import {
  downloadPathOf,
  DownloadRoute,
  isValidPackageVersion,
  isValidReleaseTag,
  parseDownloadPath,
} from './download-route';

describe('parseDownloadPath', () => {
  const route = (p: string) => {
    const r = parseDownloadPath(p);
    if (!('route' in r)) throw new Error(`${p}: ${JSON.stringify(r)}`);
    return r.route;
  };

  it('reads the kind first, so repositories and packages called releases or packages are plain names', () => {
    expect(route('/downloads/releases/acme/packages')).toEqual({
      kind: 'release-list',
      owner: 'acme',
      repo: 'packages',
    });
    expect(route('/downloads/releases/releases/packages/v1/a.tgz')).toEqual({
      kind: 'release-asset',
      owner: 'releases',
      repo: 'packages',
      tag: 'v1',
      filename: 'a.tgz',
    });
    expect(route('/downloads/packages/acme/releases')).toEqual({
      kind: 'package-list',
      owner: 'acme',
      name: 'releases',
    });
    // The owner-first shape has no package list: this stays the release list of `packages`.
    expect(route('/downloads/acme/packages/releases')).toMatchObject({
      kind: 'release-list',
      repo: 'packages',
    });
    expect(route('/downloads/packages/packages/releases/1.0/f')).toEqual({
      kind: 'package-file',
      owner: 'packages',
      name: 'releases',
      version: '1.0',
      filename: 'f',
    });
  });

  it('keeps +, decodes each segment once, and lets a tag hold / (sent plain or as %2F)', () => {
    expect(route('/downloads/releases/acme/tool/v1.4.0+build7/tool?x=1')).toMatchObject({
      tag: 'v1.4.0+build7',
      filename: 'tool',
    });
    expect(route('/downloads/releases/acme/tool/v1.4.0%2Bbuild7/my%20tool')).toMatchObject({
      tag: 'v1.4.0+build7',
      filename: 'my tool',
    });
    expect(route('/downloads/releases/acme/tool/release/2026-01/tool')).toMatchObject({
      tag: 'release/2026-01',
    });
    expect(route('/downloads/releases/acme/tool/release%2F2026-01/tool')).toMatchObject({
      tag: 'release/2026-01',
    });
    // %252F is a literal "%2F" in the name, not a separator: decoded once only.
    expect(route('/downloads/packages/acme/cli/1.0/a%252Fb')).toMatchObject({ filename: 'a%2Fb' });
    expect(route('/downloads/packages/acme/cli/1.4.0%2Bbuild7')).toEqual({
      kind: 'package-version',
      owner: 'acme',
      name: 'cli',
      version: '1.4.0+build7',
    });
    expect(route('/downloads/packages/acme/cli/1.4.0+build7/cli.tgz')).toMatchObject({
      version: '1.4.0+build7',
    });
  });

  it('answers no route for empty segments, short paths and broken encodings', () => {
    for (const p of [
      '/downloads/releases/acme',
      '/downloads/releases/acme/tool/v1',
      '/downloads/releases//tool',
      '/downloads/packages/acme',
      '/downloads/packages/acme/cli/1.0/a/b',
      '/downloads/acme/packages/cli/1.0',
      '/downloads/acme',
      '/v2/acme/tool',
    ])
      expect(parseDownloadPath(p)).toEqual({ unknown: 'no_route' });
    expect(parseDownloadPath('/downloads/releases/acme/tool/v1/%E0%A4%A')).toEqual({
      unknown: 'bad_encoding',
    });
  });

  it("serves the contract's owner-first shapes as the same routes, decoded", () => {
    expect(parseDownloadPath('/downloads/acme/tool/releases')).toEqual({
      route: { kind: 'release-list', owner: 'acme', repo: 'tool' },
    });
    expect(parseDownloadPath('/downloads/acme/tool/releases/v1.0.0%2Bb7/a%20b')).toEqual({
      route: { kind: 'release-asset', owner: 'acme', repo: 'tool', tag: 'v1.0.0+b7', filename: 'a b' },
    });
    expect(parseDownloadPath('/downloads/acme/tool/releases/release/1/a')).toEqual({
      route: { kind: 'release-asset', owner: 'acme', repo: 'tool', tag: 'release/1', filename: 'a' },
    });
    expect(parseDownloadPath('/downloads/acme/packages/cli/1.4.0/cli.tgz')).toEqual({
      route: { kind: 'package-file', owner: 'acme', name: 'cli', version: '1.4.0', filename: 'cli.tgz' },
    });
    // The owner-first grammar's own ambiguity: the package reading wins; kind-first reaches the other.
    expect(parseDownloadPath('/downloads/acme/packages/releases/1/f')).toEqual({
      route: { kind: 'package-file', owner: 'acme', name: 'releases', version: '1', filename: 'f' },
    });
    expect(parseDownloadPath('/downloads/acme/releases/packages/1/f')).toEqual({ unknown: 'no_route' });
  });

  it('builds the path of a route that parses back to it', () => {
    const routes: DownloadRoute[] = [
      { kind: 'release-list', owner: 'acme', repo: 'packages' },
      { kind: 'release-asset', owner: 'acme', repo: 'tool', tag: 'release/v1+b?#%', filename: 'a b#?.tgz' },
      { kind: 'package-file', owner: 'acme', name: 'cli', version: '1.0+x', filename: 'ü.tgz' },
      { kind: 'package-list', owner: 'acme', name: 'releases' },
      { kind: 'package-version', owner: 'acme', name: 'cli', version: '1.0+x #?' },
    ];
    for (const r of routes) expect(route(downloadPathOf(r))).toEqual(r);
  });
});

describe('release tags and package versions', () => {
  it('accepts what git and Forgejo accept for a release tag', () => {
    for (const t of ['v1.4.0+build7', 'release/2026-01', 'v1.0.0-ß', 'a@b', 'x'.repeat(255), 'latest'])
      expect([t, isValidReleaseTag(t)]).toEqual([t, true]);
  });

  it('refuses what git refuses for a tag', () => {
    for (const t of [
      '',
      'a b',
      'a..b',
      'a~1',
      'a^',
      'a:b',
      'a?',
      'a*',
      'a[b',
      'a\\b',
      '@',
      'a@{1}',
      '/a',
      'a/',
      'a//b',
      '.a',
      'a/.b',
      'a.lock',
      'a.lock/b',
      'a.',
      '-dash',
      'a\u0000b',
      'a\u007fb',
      'x'.repeat(256),
    ])
      expect([t, isValidReleaseTag(t)]).toEqual([t, false]);
  });

  it('accepts one trimmed, printable path segment as a package version', () => {
    for (const v of ['1.4.0+build7', '2026.01.07-r1', 'V1_X', '1.0 beta'])
      expect(isValidPackageVersion(v)).toBe(true);
    for (const v of ['', ' 1.0', '1.0 ', '1/0', '1\n0', 'x'.repeat(256)])
      expect(isValidPackageVersion(v)).toBe(false);
  });
});
