import { pipeline, Readable, Transform, TransformCallback } from 'node:stream';
import { Injectable } from '@nestjs/common';
import { AuditEventInput, AuditService } from '@gatehouse/audit';
import { registryAuditFacts } from '@gatehouse/auth';
import { databaseUnavailableOciError } from '@gatehouse/database';
import { isSelfCounting, OCI_ERROR_CODES, OciRoute, SelfCountingBody, toOciError } from '@gatehouse/oci';
import type { AuditDraft, RegistryReply } from './registry.types';

/**
 * One audit row per /v2/ request the registry decides: allowed when the reply is answered (for
 * a streamed body, when its last byte is handed over, with the bytes counted), denied or error
 * with the true reason when it fails. The hand-off to AuditService never waits on the database.
 */
@Injectable()
export class RegistryAudit {
  constructor(private readonly audit: AuditService) {}

  /** Runs `work` for the draft and records its outcome (a stream's when it ends). */
  async audited(
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

  /**
   * Audits a request the pipeline could not authorise for a reason other than its token (e.g.
   * member state unreadable while the database is down), as the handler would have: the routes
   * the handler audits get their row, with no member (it could not be established).
   */
  unauthorised(method: string, route: OciRoute, startedAt: number, err: unknown): void {
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

  private recordFailure(draft: AuditDraft, err: unknown, bytes?: number): void {
    // The lib that raised it has already logged the operator's side (cause and fix).
    const oci = toOciError(err, [databaseUnavailableOciError]);
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
