import { pipeline, Readable, Transform, TransformCallback } from 'node:stream';
import { Injectable } from '@nestjs/common';
import { AuditCache, AuditEventInput, AuditService } from '@gatehouse/audit';
import { RegistryAccess, registryAuditFacts, RegistryPrincipal } from '@gatehouse/auth';
import { BlobOffloadConfig, GatewayConfig } from '@gatehouse/config';
import { Entitlement, EntitlementService } from '@gatehouse/entitlements';
import {
  Digest,
  isSelfCounting,
  OCI_ERROR_CODES,
  OciError,
  OciReference,
  OciRoute,
  SelfCountingBody,
} from '@gatehouse/oci';
import {
  BlobReply,
  BlobSource,
  ManifestFetchTrace,
  ManifestReply,
  ManifestSource,
  PullThroughService,
} from '@gatehouse/pull-through';
import { knownOciError } from '../http/oci-exception.filter';
import { reachability } from './reachability';
import { ReferrersHandler } from './referrers.handler';

/** What a handler decided; the controller only writes it. */
export interface RegistryReply {
  status: number;
  headers: Record<string, string>;
  /** JSON object, bytes, or a stream (blobs). Absent for HEAD and 304. */
  body?: object | Buffer | Readable;
  /** A blob handed to nginx (X-Accel-Redirect): the bytes it will send, for the audit row. */
  offloadedBytes?: number;
}

export interface RegistryRequest {
  method: 'GET' | 'HEAD';
  query: Record<string, string | undefined>;
  ifNoneMatch?: string;
  range?: string;
  /** Aborted when the client goes away. */
  signal: AbortSignal;
}

/** Facts gathered while handling one request, written as one audit row at the end. */
export interface AuditDraft {
  action: string;
  startedAt: number;
  principal?: RegistryPrincipal;
  repository?: string;
  reference?: string;
  digest?: string;
  cache?: AuditCache;
  details?: Record<string, unknown>;
}

const OCTET_STREAM = 'application/octet-stream';

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
    private readonly audit: AuditService,
    private readonly referrers: ReferrersHandler,
    config: GatewayConfig,
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
        return this.audited(draft(), (d) => this.catalog(access, request, d));
      case 'tags':
        return this.audited(draft(), (d) => this.tags(route.name, access, request, d));
      case 'manifest':
        return this.audited(draft(), (d) => this.manifest(route.name, route.reference, access, request, d));
      case 'blob':
        return this.audited({ ...draft(), digest: route.digest }, (d) =>
          this.blob(route.name, route.digest, access, request, d),
        );
      case 'referrers':
        return this.audited({ ...draft(), digest: route.digest }, (d) =>
          this.referrers.handle(route.name, route.digest, entitledRepository(access), request, d),
        );
      case 'upload':
        throw new OciError('UNSUPPORTED', { reason: 'write_method' });
    }
  }

  /**
   * Audits a request the pipeline could not authorise for a reason other than its token (e.g.
   * member state unreadable while the database is down), as the handler would have: the routes
   * the handler audits get their row, with no member (it could not be established).
   */
  auditUnauthorised(method: string, route: OciRoute, startedAt: number, err: unknown): void {
    if (route.kind === 'ping' || route.kind === 'upload') return;
    const facts = registryAuditFacts(method, route);
    this.recordFailure(
      {
        action: facts.action,
        startedAt,
        repository: facts.repository ?? undefined,
        reference: facts.reference ?? undefined,
        digest: route.kind === 'blob' || route.kind === 'referrers' ? route.digest : undefined,
      },
      err,
    );
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
    const repositories = [...new Set(access.entitlements.map((e) => e.repository))];
    const page = paginate(repositories.sort(lexical), request.query);
    const headers: Record<string, string> = {};
    if (page.next) headers['Link'] = `</v2/_catalog?${page.next}>; rel="next"`;
    draft.details = { count: page.items.length };
    return { status: 200, headers, body: { repositories: page.items } };
  }

  // ------------------------------------------------------------------ audit

  private async audited(
    draft: AuditDraft,
    work: (draft: AuditDraft) => Promise<RegistryReply>,
  ): Promise<RegistryReply> {
    let reply: RegistryReply;
    try {
      reply = await work(draft);
    } catch (err) {
      this.recordFailure(draft, err);
      throw err;
    }
    if (reply.body instanceof Readable) {
      // A body that counts what it hands over (a committed blob, whose lean path must be piped
      // straight into the response) is watched as it is; any other goes through a counter.
      const counted: Readable & SelfCountingBody = isSelfCounting(reply.body)
        ? reply.body
        : countThrough(reply.body);
      let done = false;
      const finish = (error?: unknown) => {
        if (done) return;
        done = true;
        if (error) this.recordFailure(draft, error, counted.bytesDelivered);
        else this.record(draft, 'allowed', reply.status, { bytes: counted.bytesDelivered });
      };
      counted.once('end', () => finish());
      counted.once('close', () =>
        finish(counted.readableEnded ? undefined : (counted.errored ?? new ClientAbort())),
      );
      reply.body = counted;
      return reply;
    }
    const bytes = Buffer.isBuffer(reply.body) ? reply.body.length : reply.offloadedBytes;
    this.record(draft, 'allowed', reply.status, { bytes });
    return reply;
  }

  private recordFailure(draft: AuditDraft, err: unknown, bytes?: number): void {
    const oci = knownOciError(err);
    // A missing or bad token is the first step of every client and is audited by the auth layer.
    if (oci?.code === 'UNAUTHORIZED') return;
    if (err instanceof ClientAbort) {
      this.record(draft, 'error', 499, { reason: 'client_aborted', bytes });
      return;
    }
    const status = oci?.status ?? OCI_ERROR_CODES.INTERNAL_ERROR.status;
    const reason =
      oci?.reason ??
      (err as { failure?: string }).failure?.toLowerCase() ??
      (oci ? oci.code.toLowerCase() : 'internal_error');
    const upstreamStatus =
      (err as { upstreamStatus?: number }).upstreamStatus ??
      ((oci?.cause ?? null) as { upstreamStatus?: number } | null)?.upstreamStatus;
    this.record(draft, status < 500 ? 'denied' : 'error', status, { reason, bytes, upstreamStatus });
  }

  private record(
    draft: AuditDraft,
    outcome: 'allowed' | 'denied' | 'error',
    httpStatus: number,
    extra: { reason?: string; bytes?: number; upstreamStatus?: number },
  ): void {
    const event: AuditEventInput = {
      action: draft.action,
      outcome,
      httpStatus,
      memberId: draft.principal?.memberId ?? null,
      username: draft.principal?.username ?? null,
      repository: draft.repository ?? null,
      reference: draft.reference ?? null,
      digest: draft.digest ?? null,
      cache: draft.cache ?? null,
      reason: extra.reason ?? null,
      bytes: extra.bytes ?? null,
      upstreamStatus: extra.upstreamStatus ?? null,
      durationMs: Math.round(performance.now() - draft.startedAt),
      details: draft.details ?? null,
    };
    this.audit.record(event);
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

class ClientAbort extends Error {
  constructor() {
    super('client went away before the body was sent');
  }
}

/** Counts bytes on their way to the client (for the audit row), without buffering. */
class ByteCounter extends Transform implements SelfCountingBody {
  bytesDelivered = 0;
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytesDelivered += chunk.length;
    cb(null, chunk);
  }
}

/** `body` through a ByteCounter; pipeline, not pipe: a client that goes away must release the
 * cache reader or the upstream socket behind it. */
function countThrough(body: Readable): ByteCounter {
  const counted = new ByteCounter();
  pipeline(body, counted, () => undefined);
  return counted;
}

function manifestHeaders(m: ManifestReply): Record<string, string> {
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

function blobReply(digest: string, blob: BlobReply): RegistryReply {
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
function offloadedBlobReply(digest: string, blob: BlobReply, location: string): RegistryReply {
  const { 'Accept-Ranges': _nginxAddsIt, ...headers } = blobHeaders(digest);
  return {
    status: blob.contentRange ? 206 : 200,
    headers: { ...headers, 'X-Accel-Redirect': location },
    offloadedBytes: blob.length,
  };
}

function etagMatches(ifNoneMatch: string, digest: string): boolean {
  return ifNoneMatch
    .split(',')
    .map((s) => s.trim().replace(/^W\//, ''))
    .some((t) => t === '*' || t === `"${digest}"` || t === digest);
}

function lexical(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** OCI `n`/`last` pagination over a sorted list; `next` is the query of the following page. */
export function paginate(
  sorted: string[],
  query: Record<string, string | undefined>,
): { items: string[]; next?: string } {
  const last = query.last;
  let n: number | undefined;
  if (query.n !== undefined) {
    if (!/^\d{1,6}$/.test(query.n)) {
      throw new OciError('PAGINATION_NUMBER_INVALID', {
        message: 'n must be a non-negative integer',
        reason: 'pagination_number_invalid',
      });
    }
    n = Number(query.n);
  }
  const after = last === undefined ? sorted : sorted.filter((x) => x > last);
  if (n === undefined) return { items: after };
  const items = after.slice(0, n);
  if (after.length > n && items.length > 0) {
    return { items, next: `n=${n}&last=${encodeURIComponent(items[items.length - 1])}` };
  }
  return { items };
}
