import { Digest, isSupportedDigest, isValidRepositoryName, isValidTag, looksLikeDigest } from './grammar';
import { OciError } from './oci-error';

export type OciRoute =
  | { kind: 'ping' }
  | { kind: 'catalog' }
  | { kind: 'manifest'; name: string; reference: OciReference }
  | { kind: 'blob'; name: string; digest: Digest }
  | { kind: 'tags'; name: string }
  | { kind: 'referrers'; name: string; digest: Digest }
  | { kind: 'upload'; name: string };

/**
 * A manifest reference. `invalid` is neither a tag nor a digest by the grammar: on GET/HEAD it
 * names no manifest, so the handler answers 404 MANIFEST_UNKNOWN, after authentication like any
 * other unknown manifest (the spec: a manifest that is not found is 404; MANIFEST_INVALID is for
 * uploads). `text` is what the client sent, cut to 200 characters, for the audit row.
 */
export type OciReference =
  { type: 'tag'; tag: string } | { type: 'digest'; digest: Digest } | { type: 'invalid'; text: string };

/**
 * Parses the part of a /v2/ path after "/v2/" into a route. One parser for every route, so
 * nested names ("owner/group/image") and the spec's grammar are handled in one place.
 * Throws OciError with the contract's 400 codes for a malformed name or digest, and returns null
 * for a path that is not an OCI route at all (the caller answers 404). A malformed tag is not
 * thrown: it is a reference of type `invalid` (see OciReference).
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
    return { kind: 'blob', name, digest: parseDigest(segments[n - 1]) };
  }
  if (n >= 3 && segments[n - 2] === 'referrers') {
    const name = checkName(segments.slice(0, n - 2).join('/'));
    return { kind: 'referrers', name, digest: parseDigest(segments[n - 1]) };
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

/** A digest from outside (a request path): the Digest, or 400 DIGEST_INVALID. */
export function parseDigest(digest: string): Digest {
  if (!isSupportedDigest(digest)) {
    throw new OciError('DIGEST_INVALID', {
      message: 'invalid digest',
      detail: { digest: digest.slice(0, 200) },
    });
  }
  return digest;
}

export function parseReference(reference: string): OciReference {
  if (looksLikeDigest(reference)) {
    return { type: 'digest', digest: parseDigest(reference) };
  }
  if (!isValidTag(reference)) return { type: 'invalid', text: reference.slice(0, 200) };
  return { type: 'tag', tag: reference };
}

/** The reference as the client sent it (the audit row's `reference`). */
export function ociReferenceText(reference: OciReference): string {
  return reference.type === 'tag'
    ? reference.tag
    : reference.type === 'digest'
      ? reference.digest
      : reference.text;
}
