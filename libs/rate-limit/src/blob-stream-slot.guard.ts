import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Counter } from 'prom-client';
import { AuditService } from '@gatehouse/audit';
import { MetricsService } from '@gatehouse/observability';
import { OciError } from '@gatehouse/oci';
import { BlobStreamSlots } from './blob-stream-slots';
import { downloadAccessOf, downloadRouteOf, registryContextOf } from '@gatehouse/auth';
import { RateLimitIdentity, registryIdentity } from './rate-limit.guard';
import { limitedRequestFacts } from './rate-limited-request.util';

/** Streams end within seconds to minutes; a client told to come back after this finds a slot or asks again. */
const RETRY_AFTER_SECONDS = 5;

/**
 * Takes a blob-stream slot for every `GET /v2/<name>/blobs/<digest>` before its handler runs, and
 * gives it back when the response is done or its socket closes (`close` fires either way, so a
 * slot cannot leak). Beyond `RATE_LIMIT_BLOB_STREAMS_PER_MEMBER` the request is a 429
 * TOOMANYREQUESTS with Retry-After and `Connection: close` (the refused connection must not stay
 * open and count against the server's connection limit), audited `rate_limited` and counted in
 * `gatehouse_rate_limited_total{scope="blob_streams"}`. Taken before the handler, so a refused
 * request starts no fill and opens no file. The last guard of the registry and download pipelines
 * (`RegistryPipeline`, `DownloadPipeline` in the gateway), so only an authorised GET takes a slot.
 */
@Injectable()
export class BlobStreamSlotGuard implements CanActivate {
  private readonly limited: Counter<'scope'>;

  constructor(
    private readonly slots: BlobStreamSlots,
    private readonly audit: AuditService,
    metrics: MetricsService,
  ) {
    this.limited = metrics.counter(
      'gatehouse_rate_limited_total',
      'Requests refused with 429 by a rate limit, by limit',
      ['scope'],
    );
  }

  canActivate(context: ExecutionContext): boolean {
    const request = context.switchToHttp().getRequest<FastifyRequest>();
    if (this.slots.perKey <= 0 || request.method !== 'GET') return true;
    const download = downloadAccessOf(request)?.principal;
    const route = registryContextOf(request)?.route ?? null;
    // A blob of /v2/, or a file of /downloads/ (a listing streams nothing).
    const listing = (kind?: string) =>
      kind === 'release-list' || kind === 'package-list' || kind === 'package-version';
    if (download ? listing(downloadRouteOf(request)?.kind) : route?.kind !== 'blob') return true;
    const facts = limitedRequestFacts(request.method, request.url, route);
    const startedAt = performance.now();
    // The identity the pipeline's first guard decided (the credential was verified once, there).
    const who: RateLimitIdentity = download
      ? { kind: 'member', memberId: download.memberId, username: download.username }
      : registryIdentity(request);
    const key = who.kind === 'member' ? `member:${who.memberId}` : `ip:${who.ip}`;
    const slot = this.slots.acquire(key);
    if (!slot) {
      this.limited.inc({ scope: 'blob_streams' });
      this.audit.record({
        action: facts.action,
        outcome: 'denied',
        reason: 'rate_limited',
        httpStatus: 429,
        memberId: who.kind === 'member' ? who.memberId : null,
        username: who.kind === 'member' ? who.username : null,
        repository: facts.repository,
        reference: facts.reference,
        digest: facts.digest,
        durationMs: performance.now() - startedAt,
        details: {
          limiter: 'blob_streams',
          limit: this.slots.perKey,
          retryAfterSeconds: RETRY_AFTER_SECONDS,
        },
      });
      throw new OciError('TOOMANYREQUESTS', {
        message: `too many blob downloads at once (${this.slots.perKey}): retry after ${RETRY_AFTER_SECONDS} s`,
        headers: { 'Retry-After': String(RETRY_AFTER_SECONDS), Connection: 'close' },
        reason: 'rate_limited',
      });
    }
    const reply = context.switchToHttp().getResponse<FastifyReply>();
    reply.raw.once('close', () => slot.release());
    return true;
  }
}
