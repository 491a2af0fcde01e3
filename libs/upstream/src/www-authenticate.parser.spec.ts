import { findBasicChallenge, findBearerChallenge, parseWwwAuthenticate } from './www-authenticate.parser';

describe('parseWwwAuthenticate', () => {
  it.each([
    [
      "Forgejo's exact challenge",
      'Bearer realm="https://git.example.com/v2/token",service="container_registry",scope="*"',
      [
        {
          scheme: 'bearer',
          params: { realm: 'https://git.example.com/v2/token', service: 'container_registry', scope: '*' },
        },
      ],
    ],
    [
      "distribution's token-auth challenge with a comma inside the quoted scope",
      'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull,push"',
      [
        {
          scheme: 'bearer',
          params: {
            realm: 'https://auth.docker.io/token',
            service: 'registry.docker.io',
            scope: 'repository:library/alpine:pull,push',
          },
        },
      ],
    ],
    [
      'a Basic realm (distribution htpasswd)',
      'Basic realm="gatehouse-test"',
      [{ scheme: 'basic', params: { realm: 'gatehouse-test' } }],
    ],
    [
      "Forgejo's reqPackageAccess answer",
      'Basic realm="Gitea Package API"',
      [{ scheme: 'basic', params: { realm: 'Gitea Package API' } }],
    ],
    [
      'two challenges in one header, spaces around =, mixed case',
      'basic REALM = "a, b" , Bearer realm="r",error="insufficient_scope"',
      [
        { scheme: 'basic', params: { realm: 'a, b' } },
        { scheme: 'bearer', params: { realm: 'r', error: 'insufficient_scope' } },
      ],
    ],
    [
      'unquoted values and an escaped quote',
      'Bearer realm=https://x/t, service="a\\"b"',
      [{ scheme: 'bearer', params: { realm: 'https://x/t', service: 'a"b' } }],
    ],
    [
      'a token68 challenge followed by a parameter challenge',
      'Negotiate abc123==, Basic realm="x"',
      [
        { scheme: 'negotiate', params: {}, token68: 'abc123==' },
        { scheme: 'basic', params: { realm: 'x' } },
      ],
    ],
    ['a bare scheme', 'Basic', [{ scheme: 'basic', params: {} }]],
    ['nothing', '', []],
  ])('parses %s', (_label, header, expected) => {
    expect(parseWwwAuthenticate(header)).toEqual(expected);
  });

  it('parses repeated headers as one list', () => {
    const challenges = parseWwwAuthenticate([
      'Basic realm="a"',
      'Bearer realm="https://r/token",service="s"',
    ]);
    expect(findBasicChallenge(challenges)).toEqual({ realm: 'a' });
    expect(findBearerChallenge(challenges)).toEqual({ realm: 'https://r/token', service: 's' });
  });

  it('ignores a Bearer challenge without realm', () => {
    expect(findBearerChallenge(parseWwwAuthenticate('Bearer service="s"'))).toBeNull();
    expect(findBearerChallenge(parseWwwAuthenticate(undefined))).toBeNull();
  });

  it('survives garbage without looping', () => {
    expect(() => parseWwwAuthenticate('=,,"=;;"\\')).not.toThrow();
  });
});
