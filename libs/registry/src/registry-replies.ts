import type { BlobReply, ManifestReply } from '@gatehouse/pull-through';
import type { RegistryReply } from './registry.types';

const OCTET_STREAM = 'application/octet-stream';

export function manifestHeaders(m: ManifestReply): Record<string, string> {
  return {
    'Content-Type': m.mediaType,
    'Docker-Content-Digest': m.digest,
    'Content-Length': String(m.size),
    ETag: `"${m.digest}"`,
  };
}

function blobHeaders(digest: string): Record<string, string> {
  return {
    'Docker-Content-Digest': digest,
    'Accept-Ranges': 'bytes',
    'Content-Type': OCTET_STREAM,
    ETag: `"${digest}"`,
  };
}

export function blobReply(digest: string, blob: BlobReply): RegistryReply {
  const headers = blobHeaders(digest);
  if (blob.length !== undefined) headers['Content-Length'] = String(blob.length);
  if (blob.contentRange) headers['Content-Range'] = blob.contentRange;
  return { status: blob.contentRange ? 206 : 200, headers, body: blob.body };
}

/**
 * A committed blob nginx sends itself: no body, X-Accel-Redirect to the internal location
 * aliasing OCI_CACHE_DIR. Of this answer nginx keeps Content-Type (and Accept-Ranges, which its
 * static file handler adds too, so it is left out: the client would get it twice) and drops the
 * rest; its internal location re-adds Docker-Content-Digest and ETag from these headers
 * (docker/nginx.conf) and answers the Range itself (206 and Content-Range), so neither a length
 * nor a range is sent here. The status is the one the client gets, as the audit row records it.
 */
export function offloadedBlobReply(digest: string, blob: BlobReply, location: string): RegistryReply {
  const { 'Accept-Ranges': _nginxAddsIt, ...headers } = blobHeaders(digest);
  return {
    status: blob.contentRange ? 206 : 200,
    headers: { ...headers, 'X-Accel-Redirect': location },
    offloadedBytes: blob.length,
  };
}

export function etagMatches(ifNoneMatch: string, digest: string): boolean {
  return ifNoneMatch
    .split(',')
    .map((s) => s.trim().replace(/^W\//, ''))
    .some((t) => t === '*' || t === `"${digest}"` || t === digest);
}
