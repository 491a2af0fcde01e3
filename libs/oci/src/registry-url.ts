import { OciError } from './oci-error';
import { OciRoute, parseOciPath } from './oci-path';

/**
 * The route of a request URL under /v2/, by the spec grammar (parseOciPath). The raw URL is
 * parsed, not a framework's decoded params: names, tags and digests never need
 * percent-encoding, so an encoded byte is refused (400 NAME_INVALID) rather than decoded into a
 * separator. Null for a path under /v2/ that is no OCI route.
 */
export function parseRegistryUrl(url: string): OciRoute | null {
  const path = url.split('?', 1)[0];
  const rest = path === '/v2' ? '' : path.slice('/v2/'.length);
  if (rest.includes('%')) throw new OciError('NAME_INVALID', { detail: { reason: 'percent-encoded path' } });
  return parseOciPath(rest);
}

/** Whether a request URL is under the registry API (/v2, /v2/…, /v2?…). */
export function isRegistryUrl(url: string): boolean {
  return url === '/v2' || url.startsWith('/v2/') || url.startsWith('/v2?');
}
