import { buildBasicChallenge, buildBearerChallenge } from './challenge.util';
import { CATALOG_SCOPE, repositoryPullScope } from './scope.util';

describe('challenges', () => {
  const base = { realm: 'https://registry.example.com/auth/token', service: 'registry.example.com' };
  it.each([
    [
      'ping: no scope',
      { ...base },
      'Bearer realm="https://registry.example.com/auth/token",service="registry.example.com"',
    ],
    [
      'null scope',
      { ...base, scope: null },
      'Bearer realm="https://registry.example.com/auth/token",service="registry.example.com"',
    ],
    [
      'repository pull',
      { ...base, scope: repositoryPullScope('acme/app') },
      'Bearer realm="https://registry.example.com/auth/token",service="registry.example.com",scope="repository:acme/app:pull"',
    ],
    [
      'catalog',
      { ...base, scope: CATALOG_SCOPE },
      'Bearer realm="https://registry.example.com/auth/token",service="registry.example.com",scope="registry:catalog:*"',
    ],
    [
      'error parameter',
      { ...base, scope: 'repository:a/b:pull', error: 'insufficient_scope' as const },
      'Bearer realm="https://registry.example.com/auth/token",service="registry.example.com",scope="repository:a/b:pull",error="insufficient_scope"',
    ],
    [
      'quotes and backslashes escaped',
      { realm: 'http://h/a"b\\c', service: 'h' },
      'Bearer realm="http://h/a\\"b\\\\c",service="h"',
    ],
    [
      'control characters dropped',
      { realm: 'http://h/\r\nX-Evil: 1', service: 'h\u0000' },
      'Bearer realm="http://h/X-Evil: 1",service="h"',
    ],
  ])('%s', (_label, input, expected) => expect(buildBearerChallenge(input)).toBe(expected));

  it('builds the Basic challenge of the token endpoint', () => {
    expect(buildBasicChallenge('registry.example.com')).toBe('Basic realm="registry.example.com"');
  });
});
