import type { Reachability } from '@gatehouse/entitlements';
import type { ManifestFetchTrace, PullThroughService } from '@gatehouse/pull-through';

/**
 * The pull path's reachability as the entitlement decisions take it (`admitTag`,
 * `findReachingTag`), with the manifests it fetches counted in the request's `trace`.
 */
export function reachability(pull: PullThroughService, trace?: ManifestFetchTrace): Reachability {
  return { findReachingTag: (name, digest, admits) => pull.findReachingTag(name, digest, admits, trace) };
}
