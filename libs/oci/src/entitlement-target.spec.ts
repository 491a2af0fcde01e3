import {
  formatEntitlementTarget,
  isValidAssetFilename,
  parseEntitlementTarget,
  parseTargetReference,
} from './entitlement-target';
import { ImageReferenceError } from './image-reference';

describe('the one target grammar', () => {
  it('reads images without a prefix, releases and packages with one', () => {
    expect(parseTargetReference('acme/app:v1.2.3')).toEqual({
      kind: 'image',
      name: 'acme/app',
      tag: 'v1.2.3',
      digest: null,
    });
    expect(parseTargetReference('releases:acme/tool@v1.2.0')).toEqual({
      kind: 'releases',
      name: 'acme/tool',
      tag: 'v1.2.0',
      digest: null,
    });
    expect(parseTargetReference(' Packages:Acme/CLI@1.4.0 ')).toEqual({
      kind: 'packages',
      name: 'acme/cli',
      tag: '1.4.0',
      digest: null,
    });
    expect(parseEntitlementTarget('releases:acme/tool')).toEqual({ kind: 'releases', name: 'acme/tool' });
    expect(formatEntitlementTarget({ kind: 'packages', name: 'acme/cli' })).toBe('packages:acme/cli');
    expect(formatEntitlementTarget({ kind: 'image', name: 'acme/app' })).toBe('acme/app');
  });

  it('takes every release tag and package version Forgejo allows', () => {
    expect(parseTargetReference('releases:acme/tool@v1.4.0+build7').tag).toBe('v1.4.0+build7');
    expect(parseTargetReference('releases:acme/tool@release/2026-01').tag).toBe('release/2026-01');
    expect(parseTargetReference('packages:acme/cli@1.4.0+build7').tag).toBe('1.4.0+build7');
  });

  it.each([
    ['releases:acme', 'repository_invalid'],
    ['releases:acme/tool/extra', 'repository_invalid'],
    ['packages:acme/-x', 'repository_invalid'],
    ['releases:acme/tool@.hidden', 'tag_invalid'],
    ['releases:acme/tool@v1//2', 'tag_invalid'],
    ['releases:acme/tool@v1..2', 'tag_invalid'],
    ['packages:acme/cli@1/2', 'tag_invalid'],
  ])('refuses %s (%s)', (text, problem) => {
    expect(() => parseTargetReference(text)).toThrow(ImageReferenceError);
    try {
      parseTargetReference(text);
    } catch (e) {
      expect((e as ImageReferenceError).problem).toBe(problem);
    }
  });

  it('refuses a version where a bare target is wanted', () => {
    expect(() => parseEntitlementTarget('releases:acme/tool@v1')).toThrow(/names a version/);
    expect(() => parseEntitlementTarget('acme/app:v1')).toThrow(/names a version/);
  });

  it('accepts one path segment as an asset file name', () => {
    expect(isValidAssetFilename('tool-linux-amd64.tar.gz')).toBe(true);
    expect(isValidAssetFilename('naïve résumé.pdf')).toBe(true);
    for (const bad of ['', '.', '..', 'a/b', 'a\\b', 'a\u0000b', 'x'.repeat(256)])
      expect(isValidAssetFilename(bad)).toBe(false);
  });
});
