import { isSupportedDigest, isValidRepositoryName, isValidTag, looksLikeDigest } from './grammar';
import { OciError } from './oci-error';

export type OciRoute =
  | { kind: 'ping' }
  | { kind: 'catalog' }
  | { kind: 'manifest'; name: string; reference: OciReference }
  | { kind: 'blob'; name: string; digest: string }
  | { kind: 'tags'; name: string }
  | { kind: 'referrers'; name: string; digest: string }
  | { kind: 'upload'; name: string };

export type OciReference = { type: 'tag'; tag: string } | { type: 'digest'; digest: string };

/**
 * Parses the part of a /v2/ path after "/v2/" into a route. One parser for every route, so
 * nested names ("owner/group/image") and the spec's grammar are handled in one place.
 * Throws OciError with the contract's 400 codes for malformed input, and returns null for a
 * path that is not an OCI route at all (the caller answers 404).
 */
export function parseOciPath(rest: string): OciRoute | null {
  if (rest === '' || rest === '/') return { kind: 'ping' };
  if (rest === '_catalog') return { kind: 'catalog' };
  const segments = rest.split('/');
  if (segments.some((s) => s === '')) {
    throw new OciError('NAME_INVALID', { detail: { reason: 'empty path segment' } });
  }
  const n = segments.length;
  if (n >= 3 && segments[n - 2] === 'tags' && segments[n - 1] === 'list') {
    return { kind: 'tags', name: checkName(segments.slice(0, n - 2).join('/')) };
  }
  if (n >= 3 && segments[n - 2] === 'manifests') {
    const name = checkName(segments.slice(0, n - 2).join('/'));
    return { kind: 'manifest', name, reference: parseReference(segments[n - 1]) };
  }
  if (n >= 3 && segments[n - 2] === 'blobs') {
    const name = checkName(segments.slice(0, n - 2).join('/'));
    return { kind: 'blob', name, digest: checkDigest(segments[n - 1], 'DIGEST_INVALID') };
  }
  if (n >= 3 && segments[n - 2] === 'referrers') {
    const name = checkName(segments.slice(0, n - 2).join('/'));
    return { kind: 'referrers', name, digest: checkDigest(segments[n - 1], 'DIGEST_INVALID') };
  }
  const uploads = segments.indexOf('uploads');
  if (uploads >= 2 && segments[uploads - 1] === 'blobs') {
    return { kind: 'upload', name: checkName(segments.slice(0, uploads - 1).join('/')) };
  }
  return null;
}

function checkName(name: string): string {
  if (!isValidRepositoryName(name)) {
    throw new OciError('NAME_INVALID', { detail: { name: name.slice(0, 300) } });
  }
  return name;
}

function checkDigest(digest: string, code: 'DIGEST_INVALID' | 'MANIFEST_INVALID'): string {
  if (!isSupportedDigest(digest)) {
    throw new OciError(code, { message: 'invalid digest', detail: { digest: digest.slice(0, 200) } });
  }
  return digest;
}

export function parseReference(reference: string): OciReference {
  if (looksLikeDigest(reference)) {
    return { type: 'digest', digest: checkDigest(reference, 'DIGEST_INVALID') };
  }
  if (!isValidTag(reference)) {
    throw new OciError('MANIFEST_INVALID', {
      message: 'invalid tag',
      detail: { tag: reference.slice(0, 200) },
    });
  }
  return { type: 'tag', tag: reference };
}
