import { registryAuditFacts, RegistryAuditFacts } from '@gatehouse/auth';
import type { OciRoute } from '@gatehouse/oci';

/** What the audit row of a limited request says it was: the action its route is audited under. */
export type LimitedRequestFacts = RegistryAuditFacts;

const NONE = { repository: null, reference: null, digest: null };

/**
 * Names a limited request the way the handler it never reached would have audited it, so
 * `gatehouse audit --action manifest.get` finds the refusals next to the pulls. A /v2/ request
 * is named from the route its registry context parsed (null: not an OCI route); token requests
 * are `token.refuse` like every other refusal at the token endpoint.
 */
export function limitedRequestFacts(
  method: string,
  url: string,
  route: OciRoute | null,
): LimitedRequestFacts {
  const path = url.split('?', 1)[0];
  if (path.startsWith('/auth/')) return { action: 'token.refuse', ...NONE };
  if (path.startsWith('/downloads/')) return { action: 'download', ...NONE };
  if (path !== '/v2' && !path.startsWith('/v2/')) return { action: 'http.request', ...NONE };
  return registryAuditFacts(method, route);
}
