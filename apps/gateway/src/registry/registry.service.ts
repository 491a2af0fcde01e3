import { pipeline, Readable, Transform, TransformCallback } from 'node:stream';
import { Injectable } from '@nestjs/common';
import { AuditCache, AuditEventInput, AuditService } from '@gatehouse/audit';
import { CATALOG_SCOPE, RegistryAuthService, RegistryPrincipal, repositoryPullScope } from '@gatehouse/auth';
import {
  BlobCacheService,
  BlobFillCoordinator,
  isCacheableDigest,
  parseRangeHeader,
} from '@gatehouse/blob-cache';
import { Entitlement, EntitlementService } from '@gatehouse/entitlements';
import { OciError, OciReference, ociReferenceText, OciRoute } from '@gatehouse/oci';
import { PullThroughService, StoredManifest } from '@gatehouse/pull-through';
import { knownOciError } from '../http/oci-exception.filter';
import { UpstreamRegistrySource } from './upstream-registry.source';

/** What a handler decided; the controller only writes it. */
export interface RegistryReply {
  status: number;
  headers: Record<string, string>;
  /** JSON object, bytes, or a stream (blobs). Absent for HEAD and 304. */
  body?: object | Buffer | Readable;
}

export interface RegistryRequest {
  method: 'GET' | 'HEAD';
  authorization?: string;
  query: Record<string, string | undefined>;
  ifNoneMatch?: string;
  range?: string;
  /** Aborted when the client goes away. */
  signal: AbortSignal;
}

/** Facts gathered while handling one request, written as one audit row at the end. */
interface AuditDraft {
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
 * The pull path. Every request is authenticated, then authorised against the member's live
 * entitlement (repository, then tag rule, then digest reachability) BEFORE anything is asked of
 * upstream about it, then served from the caches or upstream. Refusals are indistinguishable from
 * absence for the member; the audit row carries the true reason.
 */
@Injectable()
export class RegistryService {
  constructor(
    private readonly auth: RegistryAuthService,
    private readonly entitlements: EntitlementService,
    private readonly pull: PullThroughService,
    private readonly blobs: BlobFillCoordinator,
    private readonly blobCache: BlobCacheService,
    private readonly upstream: UpstreamRegistrySource,
    private readonly audit: AuditService,
  ) {}

  async handle(route: OciRoute, request: RegistryRequest): Promise<RegistryReply> {
    switch (route.kind) {
      case 'ping':
        await this.auth.authenticate(request.authorization, null);
        return { status: 200, headers: {}, body: {} };
      case 'catalog':
        return this.audited({ action: 'catalog.list', startedAt: performance.now() }, (draft) =>
          this.catalog(request, draft),
        );
      case 'tags':
        return this.audited(
          { action: 'tags.list', startedAt: performance.now(), repository: route.name },
          (draft) => this.tags(route.name, request, draft),
        );
      case 'manifest':
        return this.audited(
          {
            action: request.method === 'HEAD' ? 'manifest.head' : 'manifest.get',
            startedAt: performance.now(),
            repository: route.name,
            reference: ociReferenceText(route.reference),
          },
          (draft) => this.manifest(route.name, route.reference, request, draft),
        );
      case 'blob':
        return this.audited(
          {
            action: request.method === 'HEAD' ? 'blob.head' : 'blob.get',
            startedAt: performance.now(),
            repository: route.name,
            reference: route.digest,
            digest: route.digest,
          },
          (draft) => this.blob(route.name, route.digest, request, draft),
        );
      case 'referrers':
        // Not supported (nor by Forgejo): a 404 tells clients to fall back to the tag schema.
        await this.authorizeRepository(route.name, request, { action: 'referrers', startedAt: 0 });
        throw new OciError('MANIFEST_UNKNOWN', {
          message: 'the referrers API is not supported',
          reason: 'referrers',
        });
      case 'upload':
        throw new OciError('UNSUPPORTED', { reason: 'write_method' });
    }
  }

  // ------------------------------------------------------------------ manifests

  private async manifest(
    name: string,
    reference: OciReference,
    request: RegistryRequest,
    draft: AuditDraft,
  ): Promise<RegistryReply> {
    const { entitlement } = await this.authorizeRepository(name, request, draft);
    // Neither tag nor digest: no manifest has that name (answered after the auth challenge).
    if (reference.type === 'invalid') throw new OciError('MANIFEST_UNKNOWN', { reason: 'tag_invalid' });
    const headers: Record<string, string> = {};
    let digest: string;
    if (reference.type === 'tag') {
      const match = this.entitlements.tagAllowed(entitlement, reference.tag);
      if (!match) throw new OciError('MANIFEST_UNKNOWN', { reason: 'tag_not_entitled' });
      draft.details =
        match.tag === reference.tag ? { rule: match.rule } : { rule: match.rule, tag: match.tag };
      // The form the rules judged is the form asked for: what is served is what was admitted.
      const resolved = await this.pull.resolveTag(name, match.tag);
      if (!resolved) throw new OciError('MANIFEST_UNKNOWN', { reason: 'tag_unknown_upstream' });
      digest = resolved.digest;
      if (resolved.stale) {
        headers['Warning'] =
          `299 - "upstream registry unavailable; serving the last known digest of this tag, checked ${resolved.stale.ageSeconds} s ago"`;
        draft.details = { ...draft.details, staleSeconds: resolved.stale.ageSeconds };
      }
    } else {
      digest = reference.digest;
      const reach = await this.pull.findReachingTag(
        name,
        digest,
        (tag) => !!this.entitlements.tagAllowed(entitlement, tag),
      );
      if (!reach) throw new OciError('MANIFEST_UNKNOWN', { reason: 'digest_not_reachable' });
      draft.details = { viaTag: reach.tag };
    }
    draft.digest = digest;
    const cachedLocally = await this.pull.hasLocalManifest(digest);
    draft.cache = cachedLocally ? 'hit' : 'miss';
    const manifest = await this.pull.getManifest(name, digest);
    if (!manifest) throw new OciError('MANIFEST_UNKNOWN', { reason: 'manifest_unknown_upstream' });
    Object.assign(headers, manifestHeaders(manifest));
    if (request.ifNoneMatch && etagMatches(request.ifNoneMatch, manifest.digest)) {
      return { status: 304, headers };
    }
    return { status: 200, headers, body: request.method === 'HEAD' ? undefined : manifest.body };
  }

  // ------------------------------------------------------------------ blobs

  private async blob(
    name: string,
    digest: string,
    request: RegistryRequest,
    draft: AuditDraft,
  ): Promise<RegistryReply> {
    const { entitlement } = await this.authorizeRepository(name, request, draft);
    const reach = await this.pull.findReachingTag(
      name,
      digest,
      (tag) => !!this.entitlements.tagAllowed(entitlement, tag),
    );
    if (!reach) throw new OciError('BLOB_UNKNOWN', { reason: 'digest_not_reachable' });
    draft.details = { viaTag: reach.tag };
    const declaredSize = reach.size >= 0 ? reach.size : undefined;
    const cachedSize = isCacheableDigest(digest) ? this.blobCache.stat(digest) : null;

    const headers: Record<string, string> = {
      'Docker-Content-Digest': digest,
      'Accept-Ranges': 'bytes',
      'Content-Type': OCTET_STREAM,
      ETag: `"${digest}"`,
    };

    if (request.method === 'HEAD') {
      let size = cachedSize;
      draft.cache = size !== null ? 'hit' : 'miss';
      if (size === null) {
        const head = await this.upstream.headBlob(name, digest, request.signal);
        if (!head) throw new OciError('BLOB_UNKNOWN', { reason: 'blob_unknown_upstream' });
        size = head.size >= 0 ? head.size : (declaredSize ?? null);
      }
      if (size !== null) headers['Content-Length'] = String(size);
      return { status: 200, headers };
    }

    const knownSize = cachedSize ?? declaredSize;
    let range: { start: number; end: number } | undefined;
    if (request.range && knownSize !== undefined) {
      const parsed = parseRangeHeader(request.range, knownSize);
      if (parsed.kind === 'unsatisfiable') {
        throw new OciError('RANGE_INVALID', {
          headers: { 'Content-Range': `bytes */${knownSize}` },
          reason: 'range_unsatisfiable',
        });
      }
      if (parsed.kind === 'range') range = { start: parsed.start, end: parsed.end };
    }

    if (!isCacheableDigest(digest)) return this.blobPassThrough(name, digest, request, headers, range, draft);

    const opened = await this.blobs.open(
      digest,
      declaredSize,
      async (signal) => {
        // The fill hashes every byte and commits or releases the last one only on a match, so
        // the upstream client need not hash the same bytes a second time.
        const b = await this.upstream.getBlob(name, digest, {
          expectedSize: declaredSize,
          signal,
          verifyDigest: false,
        });
        if (!b) throw new OciError('BLOB_UNKNOWN', { reason: 'blob_unknown_upstream' });
        return { body: b.body, size: b.size >= 0 ? b.size : (declaredSize ?? -1) };
      },
      range ? { range } : {},
    );
    draft.cache = opened.source === 'hit' ? 'hit' : opened.source === 'fill-joined' ? 'joined' : 'miss';
    if (range) {
      headers['Content-Range'] = `bytes ${range.start}-${range.end}/${opened.size}`;
      headers['Content-Length'] = String(range.end - range.start + 1);
      return { status: 206, headers, body: opened.body };
    }
    headers['Content-Length'] = String(opened.size);
    return { status: 200, headers, body: opened.body };
  }

  /** Digests the cache does not store (sha512): streamed straight from upstream, still verified. */
  private async blobPassThrough(
    name: string,
    digest: string,
    request: RegistryRequest,
    headers: Record<string, string>,
    range: { start: number; end: number } | undefined,
    draft: AuditDraft,
  ): Promise<RegistryReply> {
    draft.cache = 'bypass';
    const b = await this.upstream.getBlob(name, digest, { range, signal: request.signal });
    if (!b) throw new OciError('BLOB_UNKNOWN', { reason: 'blob_unknown_upstream' });
    if (b.size >= 0) headers['Content-Length'] = String(b.size);
    if (b.status === 206 && b.contentRange) headers['Content-Range'] = b.contentRange;
    return { status: b.status, headers, body: b.body };
  }

  // ------------------------------------------------------------------ listings

  private async tags(name: string, request: RegistryRequest, draft: AuditDraft): Promise<RegistryReply> {
    const { entitlement } = await this.authorizeRepository(name, request, draft);
    const listed = await this.pull.listTags(name);
    if (!listed) throw new OciError('NAME_UNKNOWN', { reason: 'repository_unknown_upstream' });
    const entitled = listed.tags.filter((t) => !!this.entitlements.tagAllowed(entitlement, t)).sort(lexical);
    const page = paginate(entitled, request.query);
    const headers: Record<string, string> = {};
    if (page.next) headers['Link'] = `</v2/${name}/tags/list?${page.next}>; rel="next"`;
    draft.details = { count: page.items.length };
    return { status: 200, headers, body: { name, tags: page.items } };
  }

  private async catalog(request: RegistryRequest, draft: AuditDraft): Promise<RegistryReply> {
    draft.principal = await this.auth.authenticate(request.authorization, CATALOG_SCOPE);
    const repositories = await this.entitlements.entitledRepositories(draft.principal.memberId);
    const page = paginate(repositories.sort(lexical), request.query);
    const headers: Record<string, string> = {};
    if (page.next) headers['Link'] = `</v2/_catalog?${page.next}>; rel="next"`;
    draft.details = { count: page.items.length };
    return { status: 200, headers, body: { repositories: page.items } };
  }

  // ------------------------------------------------------------------ authorisation

  private async authorizeRepository(
    name: string,
    request: RegistryRequest,
    draft: AuditDraft,
  ): Promise<{ principal: RegistryPrincipal; entitlement: Entitlement }> {
    const principal = await this.auth.authenticate(request.authorization, repositoryPullScope(name));
    draft.principal = principal;
    if (!principal.requiredScopeGranted)
      throw new OciError('NAME_UNKNOWN', { reason: 'repository_not_entitled' });
    const entitlement = await this.entitlements.liveEntitlement(principal.memberId, name);
    if (!entitlement) throw new OciError('NAME_UNKNOWN', { reason: 'repository_not_entitled' });
    return { principal, entitlement };
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
      const counted = new ByteCounter();
      // pipeline, not pipe: a client that goes away must release the cache reader or the
      // upstream socket behind it.
      pipeline(reply.body, counted, () => undefined);
      let done = false;
      const finish = (error?: unknown) => {
        if (done) return;
        done = true;
        if (error) this.recordFailure(draft, error, counted.bytes);
        else this.record(draft, 'allowed', reply.status, { bytes: counted.bytes });
      };
      counted.once('end', () => finish());
      counted.once('close', () =>
        finish(counted.readableEnded ? undefined : (counted.errored ?? new ClientAbort())),
      );
      reply.body = counted;
      return reply;
    }
    const bytes = Buffer.isBuffer(reply.body) ? reply.body.length : undefined;
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
    const status = oci?.status ?? 500;
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

class ClientAbort extends Error {
  constructor() {
    super('client went away before the body was sent');
  }
}

/** Counts bytes on their way to the client (for the audit row), without buffering. */
class ByteCounter extends Transform {
  bytes = 0;
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    cb(null, chunk);
  }
}

function manifestHeaders(m: StoredManifest): Record<string, string> {
  return {
    'Content-Type': m.mediaType,
    'Docker-Content-Digest': m.digest,
    'Content-Length': String(m.body.length),
    ETag: `"${m.digest}"`,
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
