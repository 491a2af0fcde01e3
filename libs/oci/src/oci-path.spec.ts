import { OCI_ERROR_CODES, ociCodeForHttpStatus, OciError, OciErrorCode, toOciError } from './oci-error';
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
    ['acme/app/manifests/md5:abc', 'DIGEST_INVALID'],
    ['acme/app/manifests/sha256:abc', 'DIGEST_INVALID'],
    ['acme/app/blobs/sha256:' + 'A'.repeat(64), 'DIGEST_INVALID'],
    ['acme/app/blobs/sha256:' + 'g'.repeat(64), 'DIGEST_INVALID'],
    ['acme/app/blobs/v1', 'DIGEST_INVALID'],
  ])('refuses %j with %s', (path, code) => {
    expect(codeOf(path)).toBe(code);
  });

  it.each(['.hidden', '-v1', 't'.repeat(129), 'v1..\\x'])(
    'keeps the malformed tag %j as an invalid reference, for a 404 after authentication',
    (tag) => {
      expect(parseOciPath(`acme/app/manifests/${tag}`)).toEqual({
        kind: 'manifest',
        name: 'acme/app',
        reference: { type: 'invalid', text: tag.slice(0, 200) },
      });
    },
  );

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

  it('takes every status from the table, the spec codes with the spec statuses', () => {
    const spec: Record<string, number> = {
      BLOB_UNKNOWN: 404,
      BLOB_UPLOAD_INVALID: 400,
      BLOB_UPLOAD_UNKNOWN: 404,
      DIGEST_INVALID: 400,
      MANIFEST_BLOB_UNKNOWN: 404,
      MANIFEST_INVALID: 400,
      MANIFEST_UNKNOWN: 404,
      NAME_INVALID: 400,
      NAME_UNKNOWN: 404,
      SIZE_INVALID: 400,
      UNAUTHORIZED: 401,
      DENIED: 403,
      UNSUPPORTED: 405,
      TOOMANYREQUESTS: 429,
      PAGINATION_NUMBER_INVALID: 400,
    };
    for (const [code, status] of Object.entries(spec)) {
      expect({ code, status: OCI_ERROR_CODES[code as OciErrorCode]?.status }).toEqual({ code, status });
    }
    for (const code of Object.keys(OCI_ERROR_CODES) as OciErrorCode[]) {
      // Options cannot carry a status: whatever a handler passes, the table decides.
      const e = new OciError(code, { status: 299 } as never);
      expect({ code, status: e.status }).toEqual({ code, status: OCI_ERROR_CODES[code].status });
    }
  });

  it('maps a framework status to the code whose row has it, or the nearest', () => {
    for (const status of [401, 403, 404, 405, 408, 413, 429, 431]) {
      expect(OCI_ERROR_CODES[ociCodeForHttpStatus(status)].status).toBe(status);
    }
    expect(ociCodeForHttpStatus(400)).toBe('REQUEST_INVALID');
    expect(ociCodeForHttpStatus(415)).toBe('REQUEST_INVALID');
    expect(ociCodeForHttpStatus(502)).toBe('INTERNAL_ERROR');
  });
});

describe('toOciError', () => {
  class Convertible extends Error {
    toOciError() {
      return new OciError('UPSTREAM_ERROR', { reason: 'upstream_unreachable', cause: this });
    }
  }

  it('keeps an OciError, converts a convertible one, then asks the translators in order', () => {
    const oci = new OciError('BLOB_UNKNOWN');
    expect(toOciError(oci)).toBe(oci);
    expect(toOciError(new Convertible('x'))).toMatchObject({ code: 'UPSTREAM_ERROR', status: 502 });
    const translated = toOciError(new Error('db gone'), [
      () => null,
      (e) =>
        (e as Error).message === 'db gone'
          ? new OciError('UNAVAILABLE', { reason: 'database_unavailable' })
          : null,
    ]);
    expect(translated).toMatchObject({ code: 'UNAVAILABLE', status: 503, reason: 'database_unavailable' });
    expect(toOciError(new Error('unknown'))).toBeNull();
  });
});
