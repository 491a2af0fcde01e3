import { ImageReferenceError, parseImageReference } from './image-reference';

const D = 'sha256:' + 'a'.repeat(64);

function problemOf(text: string): string | null {
  try {
    parseImageReference(text);
    return null;
  } catch (e) {
    return (e as ImageReferenceError).problem;
  }
}

describe('parseImageReference', () => {
  it.each([
    ['acme/app:v1.2.3', 'acme/app', 'v1.2.3', null],
    ['acme/tools/cli:1.0', 'acme/tools/cli', '1.0', null],
    ['acme/app', 'acme/app', null, null],
    ['  acme/app:latest ', 'acme/app', 'latest', null],
    [`acme/app@${D}`, 'acme/app', null, D],
    [`acme/app:v1@${D}`, 'acme/app', 'v1', D],
    ['a.b/c__d:V1.0.0-RC.1', 'a.b/c__d', 'V1.0.0-RC.1', null],
  ])('%s', (text, repository, tag, digest) => {
    expect(parseImageReference(text)).toEqual({ repository, tag, digest });
  });

  it.each([
    ['', 'empty'],
    ['   ', 'empty'],
    ['Acme/App:v1', 'repository_invalid'],
    ['acme//app:v1', 'repository_invalid'],
    ['/acme/app', 'repository_invalid'],
    ['acme/app:', 'tag_invalid'],
    ['acme/app:bad tag', 'tag_invalid'],
    ['acme/app:-bad', 'tag_invalid'],
    ['acme/app:v1:v2', 'tag_invalid'],
    [`acme/app:${'t'.repeat(129)}`, 'tag_invalid'],
    ['acme/app@sha256:abc', 'digest_invalid'],
    [`acme/app@${D.toUpperCase()}`, 'digest_invalid'],
    [`acme/app@${D}@${D}`, 'digest_invalid'],
    ['acme/app@', 'digest_invalid'],
  ])('refuses %j (%s)', (text, problem) => {
    expect(problemOf(text)).toBe(problem);
  });

  it('says to leave out a registry host', () => {
    expect(() => parseImageReference('registry.example.com:5000/acme/app:v1')).toThrow(
      /leave out the registry host \("registry.example.com:5000"\)/,
    );
    expect(() => parseImageReference('Acme/App:v1')).toThrow(/not a valid repository name: use lowercase/);
    expect(() => parseImageReference('acme/app:-bad')).toThrow(/"-bad" is not a valid tag/);
  });
});
