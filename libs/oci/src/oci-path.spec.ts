import { OciError } from './oci-error';
import { parseOciPath } from './oci-path';

const D = 'sha256:' + 'a'.repeat(64);

function codeOf(path: string): string | null {
  try {
    parseOciPath(path);
    return null;
  } catch (e) {
    return (e as OciError).code;
  }
}

describe('parseOciPath', () => {
  it.each([
    ['', { kind: 'ping' }],
    ['_catalog', { kind: 'catalog' }],
    [
      'acme/app/manifests/v1.0.0',
      { kind: 'manifest', name: 'acme/app', reference: { type: 'tag', tag: 'v1.0.0' } },
    ],
    [
      'acme/app/manifests/' + D,
      { kind: 'manifest', name: 'acme/app', reference: { type: 'digest', digest: D } },
    ],
    ['owner/group/image/blobs/' + D, { kind: 'blob', name: 'owner/group/image', digest: D }],
    ['acme/app/tags/list', { kind: 'tags', name: 'acme/app' }],
    ['a/b/c/d/tags/list', { kind: 'tags', name: 'a/b/c/d' }],
    ['acme/app/referrers/' + D, { kind: 'referrers', name: 'acme/app', digest: D }],
    ['acme/app/blobs/uploads/', null],
    ['acme/app/blobs/uploads/abc', { kind: 'upload', name: 'acme/app' }],
    ['acme/manifests/x', { kind: 'manifest', name: 'acme', reference: { type: 'tag', tag: 'x' } }],
    ['acme/app/tags/list/extra', null],
    ['acme/app', null],
  ])('parses %j', (path, expected) => {
    if (path === 'acme/app/blobs/uploads/') {
      expect(codeOf(path)).toBe('NAME_INVALID');
      return;
    }
    expect(parseOciPath(path)).toEqual(expected);
  });

  it.each([
    ['Acme/app/manifests/v1', 'NAME_INVALID'],
    ['acme/../app/manifests/v1', 'NAME_INVALID'],
    ['acme//app/manifests/v1', 'NAME_INVALID'],
    ['acme/app%2Fx/manifests/v1', 'NAME_INVALID'],
    ['acme/a\\b/manifests/v1', 'NAME_INVALID'],
    ['acme/a\u0000b/manifests/v1', 'NAME_INVALID'],
    ['-acme/app/manifests/v1', 'NAME_INVALID'],
    [`${'a'.repeat(256)}/manifests/v1`, 'NAME_INVALID'],
    ['acme/app/manifests/.hidden', 'MANIFEST_INVALID'],
    ['acme/app/manifests/' + 't'.repeat(129), 'MANIFEST_INVALID'],
    ['acme/app/manifests/md5:abc', 'DIGEST_INVALID'],
    ['acme/app/manifests/sha256:abc', 'DIGEST_INVALID'],
    ['acme/app/blobs/sha256:' + 'A'.repeat(64), 'DIGEST_INVALID'],
    ['acme/app/blobs/sha256:' + 'g'.repeat(64), 'DIGEST_INVALID'],
    ['acme/app/blobs/v1', 'DIGEST_INVALID'],
  ])('refuses %j with %s', (path, code) => {
    expect(codeOf(path)).toBe(code);
  });

  it('accepts the separators the grammar allows', () => {
    expect(parseOciPath('a.b/c__d/e-f--g/manifests/t')).toMatchObject({ name: 'a.b/c__d/e-f--g' });
  });
});

describe('OciError', () => {
  it('builds the envelope with the table status', () => {
    const e = new OciError('MANIFEST_UNKNOWN', { detail: { tag: 'x' } });
    expect(e.status).toBe(404);
    expect(e.toEnvelope()).toEqual({
      errors: [{ code: 'MANIFEST_UNKNOWN', message: 'manifest unknown to registry', detail: { tag: 'x' } }],
    });
  });
});
