import { Injectable } from '@nestjs/common';
import { Entitlement, EntitlementService } from '@gatehouse/entitlements';
import { filterReferrers, MEDIA_TYPES, OCI_FILTERS_APPLIED, referrersIndex } from '@gatehouse/oci';
import { ManifestFetchTrace, PullThroughService, ReferrersSource } from '@gatehouse/pull-through';
import { reachability } from './reachability';
import type { AuditDraft, RegistryReply, RegistryRequest } from './registry.types';

/**
 * `GET /v2/<name>/referrers/<digest>` (OCI distribution-spec 1.1 "Listing referrers"), served by
 * the gateway since Forgejo has no referrers API. The subject is judged by the same reachability
 * as a manifest by digest (`EntitlementService.findReachingTag`); a reachable subject gets its
 * referrers from `ReferrersSource` (libs/pull-through), an unreachable or unknown one the same
 * empty index, without upstream being asked anything about it. Always 200 with the index media
 * type: the spec forbids a 404 from a registry that supports the API.
 */
@Injectable()
export class ReferrersService {
  constructor(
    private readonly entitlements: EntitlementService,
    private readonly pull: PullThroughService,
    private readonly referrers: ReferrersSource,
  ) {}

  async handle(
    name: string,
    subject: string,
    entitlement: Entitlement,
    request: RegistryRequest,
    draft: AuditDraft,
  ): Promise<RegistryReply> {
    const trace = new ManifestFetchTrace();
    const via = await this.entitlements.findReachingTag(entitlement, subject, reachability(this.pull, trace));
    const artifactType = request.query.artifactType || undefined;
    const headers: Record<string, string> = { 'Content-Type': MEDIA_TYPES.OCI_INDEX };
    if (artifactType) headers[OCI_FILTERS_APPLIED] = 'artifactType';
    let manifests = referrersIndex([]).manifests;
    if (via) {
      const list = await this.referrers.list(name, subject, trace);
      manifests = filterReferrers(list.manifests, artifactType);
      draft.details = { viaTag: via.tag, origin: list.origin, count: manifests.length };
      if (list.stale) {
        headers['Warning'] =
          `299 - "upstream registry unavailable; serving the last known referrers, checked ${list.stale.ageSeconds} s ago"`;
      }
    } else {
      // Indistinguishable from a subject without referrers; the audit row says why.
      draft.details = { reason: 'subject_not_reachable', count: 0 };
    }
    const body = Buffer.from(JSON.stringify(referrersIndex(manifests)));
    headers['Content-Length'] = String(body.length);
    return { status: 200, headers, body: request.method === 'HEAD' ? undefined : body };
  }
}
