import {
  accessCovers,
  CATALOG_SCOPE,
  formatScope,
  grantScopes,
  parseResourceScope,
  parseScopes,
  repositoryPullScope,
  ScopeParseError,
} from './scope.util';

describe('scopes', () => {
  describe('parsing one scope', () => {
    it.each([
      ['repository:acme/app:pull', { type: 'repository', name: 'acme/app', actions: ['pull'] }],
      ['repository:acme/app:pull,push', { type: 'repository', name: 'acme/app', actions: ['pull', 'push'] }],
      ['repository:acme/group/app:pull', { type: 'repository', name: 'acme/group/app', actions: ['pull'] }],
      [
        'repository:localhost:5000/acme/app:pull',
        { type: 'repository', name: 'localhost:5000/acme/app', actions: ['pull'] },
      ],
      ['registry:catalog:*', { type: 'registry', name: 'catalog', actions: ['*'] }],
      [
        'repository(plugin):acme/app:pull',
        { type: 'repository(plugin)', name: 'acme/app', actions: ['pull'] },
      ],
      ['repository:acme/app:', { type: 'repository', name: 'acme/app', actions: [] }],
      ['repository:acme/app:pull,pull', { type: 'repository', name: 'acme/app', actions: ['pull'] }],
    ])('%s', (text, expected) => expect(parseResourceScope(text)).toEqual(expected));

    it.each([
      'repository',
      'repository:acme/app',
      ':acme/app:pull',
      'Repository:acme/app:pull',
      'repository::pull',
      'repository:acme/app:PULL',
      'repository:acme/app:pu ll',
    ])('refuses %j', (text) => expect(() => parseResourceScope(text)).toThrow(ScopeParseError));
  });

  it('parses repeated and space-separated scopes', () => {
    expect(parseScopes(['repository:a/b:pull repository:c/d:pull', 'registry:catalog:*'])).toEqual([
      { type: 'repository', name: 'a/b', actions: ['pull'] },
      { type: 'repository', name: 'c/d', actions: ['pull'] },
      { type: 'registry', name: 'catalog', actions: ['*'] },
    ]);
    expect(parseScopes([])).toEqual([]);
    expect(parseScopes(['', '  '])).toEqual([]);
  });

  it('bounds the number of scopes', () => {
    expect(() =>
      parseScopes([Array.from({ length: 65 }, (_, i) => `repository:a/b${i}:pull`).join(' ')]),
    ).toThrow(ScopeParseError);
  });

  describe('granting: requested ∩ entitled, pull only', () => {
    const entitled = new Set([
      'image:acme/app',
      'image:acme/tools/cli',
      'releases:acme/tool',
      'packages:acme/cli',
    ]);
    const isEntitled = (kind: string, name: string) => entitled.has(`${kind}:${name}`);
    it.each<[string, string[], string[]]>([
      ['login (no scope)', [], []],
      ['entitled pull', ['repository:acme/app:pull'], ['repository:acme/app:pull']],
      ['push is never granted', ['repository:acme/app:push'], []],
      ['pull,push yields pull', ['repository:acme/app:pull,push'], ['repository:acme/app:pull']],
      ['* yields pull', ['repository:acme/app:*'], ['repository:acme/app:pull']],
      ['not entitled', ['repository:acme/secret:pull'], []],
      ['partial', ['repository:acme/app:pull', 'repository:acme/secret:pull'], ['repository:acme/app:pull']],
      ['nested', ['repository:acme/tools/cli:pull'], ['repository:acme/tools/cli:pull']],
      ['catalog', ['registry:catalog:*'], ['registry:catalog:*']],
      ['catalog without *', ['registry:catalog:pull'], []],
      ['unknown type', ['repository(plugin):acme/app:pull'], []],
      ['invalid name', ['repository:ACME/app:pull'], []],
      ['release download', ['release:acme/tool:pull'], ['release:acme/tool:pull']],
      ['package download, * yields pull', ['package:acme/cli:*'], ['package:acme/cli:pull']],
      ['a release scope does not open the image of that name', ['release:acme/app:pull'], []],
      ['an image scope does not open the releases of that name', ['repository:acme/tool:pull'], []],
      ['a package scope is not a release scope', ['release:acme/cli:pull'], []],
      ['download names are owner/name', ['release:acme/x/tool:pull'], []],
      ['download push is never granted', ['package:acme/cli:push'], []],
      [
        'duplicates merged',
        ['repository:acme/app:pull', 'repository:acme/app:pull,push'],
        ['repository:acme/app:pull'],
      ],
    ])('%s', (_label, requested, granted) => {
      expect(grantScopes(parseScopes(requested), isEntitled).map(formatScope)).toEqual(granted);
    });
  });

  it('checks coverage of a required scope', () => {
    const access = [repositoryPullScope('acme/app'), CATALOG_SCOPE];
    expect(accessCovers(access, repositoryPullScope('acme/app'))).toBe(true);
    expect(accessCovers(access, repositoryPullScope('acme/other'))).toBe(false);
    expect(accessCovers(access, CATALOG_SCOPE)).toBe(true);
    expect(accessCovers([], CATALOG_SCOPE)).toBe(false);
    expect(
      accessCovers([{ type: 'repository', name: 'acme/app', actions: [] }], repositoryPullScope('acme/app')),
    ).toBe(false);
  });
});
