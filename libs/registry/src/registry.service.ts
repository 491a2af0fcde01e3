import { Injectable } from '@nestjs/common';
import { RegistryAccess, registryAuditFacts } from '@gatehouse/auth';
import { BlobOffloadConfig, GatewayConfig } from '@gatehouse/config';
import { Entitlement, EntitlementService, warningHeader } from '@gatehouse/entitlements';
import { Digest, OciError, OciReference } from '@gatehouse/oci';
import { BlobSource, ManifestFetchTrace, ManifestSource, PullThroughService } from '@gatehouse/pull-through';
import { lexical, paginate } from './pagination';
import { reachability } from './reachability';
import { ReferrersService } from './referrers.service';
import { UpstreamCatalog } from './upstream-catalog';
import { RegistryAudit } from './registry-audit';
import { blobReply, etagMatches, manifestHeaders, offloadedBlobReply } from './registry-replies';
import type { AuditDraft, RegistryReply, RegistryRequest } from './registry.types';

/**
 * The registry surface. Every request arrives authenticated, with the member's live entitlement
 * loaded once by the request pipeline (registry.guards.ts, `RegistryAccess`); it is authorised
 * against that entitlement (repository, then tag rule, then digest reachability) BEFORE anything
 * is asked of upstream about it, then served by libs/pull-through (`ManifestSource`,
 * `BlobSource`), whose replies this class only maps to HTTP. Refusals are indistinguishable from
 * absence for the member; the audit row carries the true reason.
 */
@Injectable()
export class RegistryService {
  constructor(
    private readonly entitlements: EntitlementService,
    private readonly pull: PullThroughService,
    private readonly manifests: ManifestSource,
    private readonly blobs: BlobSource,
    private readonly audit: RegistryAudit,
    private readonly referrers: ReferrersService,
    config: GatewayConfig,
    private readonly upstreamCatalog: UpstreamCatalog,
  ) {
    const offload = config.cache.offload;
    this.offload = offload?.mode === 'x-accel-redirect' ? offload : null;
  }

  /** Set when committed blobs are handed to nginx (OCI_BLOB_OFFLOAD=x-accel-redirect). */
  private readonly offload: BlobOffloadConfig | null;

  async handle(access: RegistryAccess, request: RegistryRequest): Promise<RegistryReply> {
    const { route } = access;
    // The audit row names the request as the rate limit's rows do, and the member the pipeline found.
    const draft = (): AuditDraft => {
      const facts = registryAuditFacts(request.method, route);
      return {
        action: facts.action,
        startedAt: performance.now(),
        principal: access.principal,
        repository: facts.repository ?? undefined,
        reference: facts.reference ?? undefined,
      };
    };
    switch (route.kind) {
      case 'ping':
        return { status: 200, headers: {}, body: {} };
      case 'catalog':
        return this.audit.audited(draft(), (d) => this.catalog(access, request, d));
      case 'tags':
        return this.audit.audited(draft(), (d) => this.tags(route.name, access, request, d));
      case 'manifest':
        return this.audit.audited(draft(), (d) =>
          this.manifest(route.name, route.reference, access, request, d),
        );
      case 'blob':
        return this.audit.audited({ ...draft(), digest: route.digest }, (d) =>
          this.blob(route.name, route.digest, access, request, d),
        );
      case 'referrers':
        return this.audit.audited({ ...draft(), digest: route.digest }, (d) =>
          this.referrers.handle(route.name, route.digest, entitledRepository(access), request, d),
        );
      case 'upload':
        throw new OciError('UNSUPPORTED', { reason: 'write_method' });
    }
  }

  // ------------------------------------------------------------------ manifests

  private async manifest(
    name: string,
    reference: OciReference,
    access: RegistryAccess,
    request: RegistryRequest,
    draft: AuditDraft,
  ): Promise<RegistryReply> {
    const entitlement = entitledRepository(access);
    // Neither tag nor digest: no manifest has that name (answered after the auth challenge).
    if (reference.type === 'invalid') throw new OciError('MANIFEST_UNKNOWN', { reason: 'tag_invalid' });
    const headers: Record<string, string> = {};
    // Resolving a tag or proving reachability may fetch the very manifest served below.
    const trace = new ManifestFetchTrace();
    let digest: string;
    const reach = reachability(this.pull, trace);
    if (reference.type === 'tag') {
      // A rule admits the tag, or it is an artifact tag of a reachable subject (sha256-<hex>.sig).
      const admitted = await this.entitlements.admitTag(entitlement, reference.tag, reach);
      if (!admitted) throw new OciError('MANIFEST_UNKNOWN', { reason: 'tag_not_entitled' });
      draft.details =
        admitted.via === 'rule'
          ? { rule: admitted.match.rule }
          : { rule: admitted.rule, artifactOf: admitted.subjectTag, artifact: admitted.artifact.kind };
      if (admitted.tag !== reference.tag) draft.details.tag = admitted.tag;
      // The form the rules judged is the form asked for: what is served is what was admitted.
      const resolved = await this.pull.resolveTag(name, admitted.tag, trace);
      if (!resolved) throw new OciError('MANIFEST_UNKNOWN', { reason: 'tag_unknown_upstream' });
      digest = resolved.digest;
      if (resolved.stale) {
        headers['Warning'] =
          `299 - "upstream registry unavailable; serving the last known digest of this tag, checked ${resolved.stale.ageSeconds} s ago"`;
        draft.details = { ...draft.details, staleSeconds: resolved.stale.ageSeconds };
      }
    } else {
      digest = reference.digest;
      const via = await this.entitlements.findReachingTag(entitlement, digest, reach);
      if (!via) throw new OciError('MANIFEST_UNKNOWN', { reason: 'digest_not_reachable' });
      draft.details = viaDetails(via);
    }
    draft.digest = digest;
    const manifest = await this.manifests.get(name, digest, trace);
    draft.cache = manifest.source;
    Object.assign(headers, manifestHeaders(manifest));
    // An entitlement or a key about to expire says so on every manifest the client pulls with it.
    Object.assign(
      headers,
      warningHeader(
        headers['Warning'],
        this.entitlements.expiryWarning(entitlement),
        this.entitlements.keyExpiryWarning(access.principal.accessKey),
      ),
    );
    if (request.ifNoneMatch && etagMatches(request.ifNoneMatch, manifest.digest)) {
      return { status: 304, headers };
    }
    return { status: 200, headers, body: request.method === 'HEAD' ? undefined : manifest.body };
  }

  // ------------------------------------------------------------------ blobs

  private async blob(
    name: string,
    digest: Digest,
    access: RegistryAccess,
    request: RegistryRequest,
    draft: AuditDraft,
  ): Promise<RegistryReply> {
    const entitlement = entitledRepository(access);
    const reach = await this.entitlements.findReachingTag(entitlement, digest, reachability(this.pull));
    if (!reach) throw new OciError('BLOB_UNKNOWN', { reason: 'digest_not_reachable' });
    draft.details = viaDetails(reach);
    const declaredSize = reach.size >= 0 ? reach.size : undefined;
    const blob =
      request.method === 'HEAD'
        ? await this.blobs.head(name, digest, { declaredSize, signal: request.signal })
        : await this.blobs.open(name, digest, {
            declaredSize,
            range: request.range,
            signal: request.signal,
            offload: this.offload !== null,
          });
    draft.cache = blob.source;
    if (blob.file && this.offload) return offloadedBlobReply(digest, blob, this.offload.location + blob.file);
    return blobReply(digest, blob);
  }

  // ------------------------------------------------------------------ listings

  private async tags(
    name: string,
    access: RegistryAccess,
    request: RegistryRequest,
    draft: AuditDraft,
  ): Promise<RegistryReply> {
    const entitlement = entitledRepository(access);
    const listed = await this.pull.listTags(name);
    if (!listed) throw new OciError('NAME_UNKNOWN', { reason: 'repository_unknown_upstream' });
    // What the manifest route admits, artifact tags of reachable subjects included (decisions.md).
    const reach = reachability(this.pull);
    const entitled: string[] = [];
    for (const t of listed.tags)
      if (await this.entitlements.admitTag(entitlement, t, reach)) entitled.push(t);
    entitled.sort(lexical);
    const page = paginate(entitled, request.query);
    const headers: Record<string, string> = {};
    if (page.next) headers['Link'] = `</v2/${name}/tags/list?${page.next}>; rel="next"`;
    draft.details = { count: page.items.length };
    return { status: 200, headers, body: { name, tags: page.items } };
  }

  private async catalog(
    access: RegistryAccess,
    request: RegistryRequest,
    draft: AuditDraft,
  ): Promise<RegistryReply> {
    // Through another Gatehouse, only what it lets this gateway's member there see.
    const visible = await this.upstreamCatalog.visible();
    const repositories = [...new Set(access.entitlements.map((e) => e.repository))].filter(
      (r) => visible === null || visible.has(r.toLowerCase()),
    );
    const page = paginate(repositories.sort(lexical), request.query);
    const headers: Record<string, string> = {};
    if (page.next) headers['Link'] = `</v2/_catalog?${page.next}>; rel="next"`;
    draft.details = { count: page.items.length };
    return { status: 200, headers, body: { repositories: page.items } };
  }
}

/**
 * The member's live entitlement to the route's repository, loaded once by the pipeline; without
 * one the repository is `404 NAME_UNKNOWN`, exactly as one that does not exist.
 */
function entitledRepository(access: RegistryAccess): Entitlement {
  if (!access.entitlement) throw new OciError('NAME_UNKNOWN', { reason: 'repository_not_entitled' });
  return access.entitlement;
}

function viaDetails(via: { tag: string; subjectTag?: string }): Record<string, unknown> {
  return via.subjectTag ? { viaTag: via.tag, artifactOf: via.subjectTag } : { viaTag: via.tag };
}
