import { Readable, Transform, TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { AuditService } from '@gatehouse/audit';
import { MetricsService } from '@gatehouse/observability';
import { toOciError } from '@gatehouse/oci';
import { Counter } from 'prom-client';
import type { DownloadSource } from './download-store';

/** What one download request's audit row says (filled in as the request is decided). */
export interface DownloadDraft {
  action: 'download' | 'download.list';
  kind: 'releases' | 'packages';
  method: string;
  startedAt: number;
  memberId: string;
  username: string;
  /** `releases:acme/tool`, `packages:acme/cli` */
  target: string;
  /** `<tag>/<filename>` or `<version>/<filename>`; null for a listing. */
  reference: string | null;
  asset: string | null;
  digest?: string | null;
  cache?: DownloadSource | null;
  details?: Record<string, unknown>;
}

/**
 * Every download and every refusal is one audit row (action `download` or `download.list`,
 * the kind, the asset, bytes sent, cache hit/miss) and one count in
 * `gatehouse_downloads_total{kind,outcome,cache}` / `gatehouse_download_bytes_total{kind,cache}`.
 */
export class DownloadAudit {
  private readonly total: Counter<'kind' | 'outcome' | 'cache'>;
  private readonly bytes: Counter<'kind' | 'cache'>;

  constructor(
    private readonly audit: AuditService,
    metrics: MetricsService,
  ) {
    this.total = metrics.counter(
      'gatehouse_downloads_total',
      'Download requests (release assets, package files, listings) by kind, outcome and cache result',
      ['kind', 'outcome', 'cache'],
    );
    this.bytes = metrics.counter(
      'gatehouse_download_bytes_total',
      'Download bytes sent, by kind and cache result',
      ['kind', 'cache'],
    );
  }

  /** The body, counted; the row is written when it ends, fails or the client goes away. */
  streamed(draft: DownloadDraft, status: number, body: Readable, length: number): Readable {
    let sent = 0;
    const counter = new Transform({
      transform(chunk: Buffer, _enc, done: TransformCallback) {
        sent += chunk.length;
        done(null, chunk);
      },
    });
    let recorded = false;
    const finish = (error?: unknown) => {
      if (recorded) return;
      recorded = true;
      // Every byte announced went out: a late close (the response already finished) is no abort.
      if (error === undefined || sent === length) this.allowed(draft, status, sent);
      else this.failed(draft, error, sent);
    };
    pipeline(body, counter).then(
      () => finish(),
      (e: unknown) => finish(e ?? new Error('client aborted')),
    );
    counter.once('close', () => {
      if (!counter.readableEnded) finish(counter.errored ?? new ClientAborted());
    });
    return counter;
  }

  allowed(draft: DownloadDraft, status: number, bytes: number | null): void {
    this.write(draft, 'allowed', status, { bytes });
  }

  failed(draft: DownloadDraft, err: unknown, bytes?: number): void {
    if (err instanceof ClientAborted || (err as { code?: string }).code === 'ERR_STREAM_PREMATURE_CLOSE') {
      this.write(draft, 'error', 499, { reason: 'client_aborted', bytes: bytes ?? null });
      return;
    }
    const oci = toOciError(err);
    const status = oci?.status ?? 500;
    this.write(draft, status < 500 ? 'denied' : 'error', status, {
      reason: oci?.reason ?? (oci ? oci.code.toLowerCase() : 'internal_error'),
      bytes: bytes ?? null,
    });
  }

  private write(
    draft: DownloadDraft,
    outcome: 'allowed' | 'denied' | 'error',
    httpStatus: number,
    extra: { reason?: string; bytes: number | null },
  ): void {
    const cache = draft.cache ?? null;
    this.total.inc({ kind: draft.kind, outcome, cache: cache ?? 'none' });
    if (extra.bytes) this.bytes.inc({ kind: draft.kind, cache: cache ?? 'none' }, extra.bytes);
    this.audit.record({
      action: draft.action,
      outcome,
      httpStatus,
      memberId: draft.memberId,
      username: draft.username,
      repository: draft.target,
      reference: draft.reference,
      digest: draft.digest ?? null,
      cache,
      reason: extra.reason ?? null,
      bytes: extra.bytes,
      durationMs: Math.round(performance.now() - draft.startedAt),
      details: { kind: draft.kind, method: draft.method, asset: draft.asset, ...draft.details },
    });
  }
}

class ClientAborted extends Error {
  constructor() {
    super('the client went away before the download ended');
  }
}
