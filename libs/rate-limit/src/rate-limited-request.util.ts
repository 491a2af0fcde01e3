import { ociReferenceText, OciRoute, parseOciPath } from '@gatehouse/oci';

/** What the audit row of a limited request says it was: the action its route is audited under. */
export interface LimitedRequestFacts {
  action: string;
  repository: string | null;
  reference: string | null;
  digest: string | null;
}

const NONE = { repository: null, reference: null, digest: null };

/**
 * Names a limited request the way the handler it never reached would have audited it, so
 * `gatehouse audit --action manifest.get` finds the refusals next to the pulls. Token requests
 * are `token.refuse` like every other refusal at the token endpoint.
 */
export function limitedRequestFacts(method: string, url: string): LimitedRequestFacts {
  const path = url.split('?', 1)[0];
  if (path.startsWith('/auth/')) return { action: 'token.refuse', ...NONE };
  if (path !== '/v2' && !path.startsWith('/v2/')) return { action: 'http.request', ...NONE };
  let route: OciRoute | null = null;
  try {
    const rest = path === '/v2' ? '' : path.slice('/v2/'.length);
    route = rest.includes('%') ? null : parseOciPath(rest);
  } catch {
    route = null;
  }
  const head = method === 'HEAD';
  switch (route?.kind) {
    case 'ping':
      return { action: 'registry.ping', ...NONE };
    case 'catalog':
      return { action: 'catalog.list', ...NONE };
    case 'tags':
      return { action: 'tags.list', ...NONE, repository: route.name };
    case 'manifest':
      return {
        action: head ? 'manifest.head' : 'manifest.get',
        repository: route.name,
        reference: ociReferenceText(route.reference),
        digest: route.reference.type === 'digest' ? route.reference.digest : null,
      };
    case 'blob':
      return {
        action: head ? 'blob.head' : 'blob.get',
        repository: route.name,
        reference: route.digest,
        digest: route.digest,
      };
    case 'referrers':
      return { action: 'referrers', ...NONE, repository: route.name, digest: route.digest };
    default:
      return { action: 'registry.request', ...NONE };
  }
}
