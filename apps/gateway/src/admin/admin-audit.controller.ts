import { Get, HttpStatus, Query } from '@nestjs/common';
import { ApiOkResponse } from '@nestjs/swagger';
import {
  AUDIT_QUERY_MAX_LIMIT,
  AuditEvent,
  AuditQueryFilters,
  AuditQueryService,
  parseAuditTime,
} from '@gatehouse/audit';
import { Clock } from '@gatehouse/observability';
import { AdminController } from './admin-controller.decorator';
import { adminHttpError } from './admin-errors.interceptor';
import { AuditQueryDto } from './admin.dto';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Where the previous page ended: the last event's time and id (the query's sort order). */
interface AuditCursor {
  at: Date;
  id: string;
}

export function encodeAuditCursor(e: Pick<AuditEvent, 'occurredAt' | 'id'>): string {
  return Buffer.from(`${e.occurredAt.toISOString()}|${e.id}`, 'utf8').toString('base64url');
}

export function decodeAuditCursor(cursor: string): AuditCursor | null {
  const [iso, id, extra] = Buffer.from(cursor, 'base64url').toString('utf8').split('|');
  const at = new Date(iso ?? '');
  if (extra !== undefined || !id || !UUID.test(id) || Number.isNaN(at.getTime())) return null;
  return { at, id: id.toLowerCase() };
}

/** True when `e` comes after the cursor in the newest-first order (time desc, then id desc). */
function isAfter(e: AuditEvent, cursor: AuditCursor): boolean {
  const t = e.occurredAt.getTime();
  return t < cursor.at.getTime() || (t === cursor.at.getTime() && e.id < cursor.id);
}

@AdminController('audit', 'audit')
export class AdminAuditController {
  constructor(
    private readonly query: AuditQueryService,
    private readonly clock: Clock,
  ) {}

  @Get()
  @ApiOkResponse({
    description:
      'audit events, newest first, `limit` per page; pass `nextCursor` back as `cursor` for the next page (null on the last)',
  })
  async find(@Query() q: AuditQueryDto): Promise<{ items: AuditEvent[]; nextCursor: string | null }> {
    const now = new Date(this.clock.now());
    const limit = q.limit ?? 100;
    const filters: AuditQueryFilters = {
      repository: q.repository,
      kind: q.kind,
      action: q.action,
      outcome: q.outcome,
      reason: q.reason,
      clientIp: q.ip,
      requestId: q.requestId,
      memberTag: q.memberTag,
      clientRequestId: q.clientRequestId,
      since: q.since === undefined ? undefined : parseAuditTime(q.since, now),
      until: q.until === undefined ? undefined : parseAuditTime(q.until, now),
    };
    if (q.member !== undefined) {
      if (UUID.test(q.member)) filters.memberId = q.member.toLowerCase();
      else filters.username = q.member;
    }
    if (filters.since && filters.until && filters.since >= filters.until) {
      throw adminHttpError(HttpStatus.BAD_REQUEST, 'since must be earlier than until');
    }
    const cursor = q.cursor === undefined ? null : decodeAuditCursor(q.cursor);
    if (q.cursor !== undefined && !cursor) {
      throw adminHttpError(HttpStatus.BAD_REQUEST, 'cursor must be the nextCursor of a previous page');
    }

    const events = cursor
      ? await this.after(filters, cursor, limit + 1)
      : await this.query.find({ ...filters, limit: limit + 1 });
    const items = events.slice(0, limit);
    const nextCursor = events.length > limit ? encodeAuditCursor(items[items.length - 1]) : null;
    return { items, nextCursor };
  }

  /**
   * The `wanted` events after the cursor. The query's upper bound is a time, so events sharing
   * the cursor's millisecond that were already served come back first and are skipped; the
   * fetch grows by as many as were skipped until the page is full or the log is exhausted.
   */
  private async after(
    filters: AuditQueryFilters,
    cursor: AuditCursor,
    wanted: number,
  ): Promise<AuditEvent[]> {
    const bound = new Date(cursor.at.getTime() + 1);
    const until = filters.until && filters.until < bound ? filters.until : bound;
    let fetch = wanted;
    for (;;) {
      const rows = await this.query.find({ ...filters, until, limit: fetch });
      const kept = rows.filter((e) => isAfter(e, cursor));
      const exhausted = rows.length < fetch || fetch >= AUDIT_QUERY_MAX_LIMIT;
      if (kept.length >= wanted || exhausted) return kept.slice(0, wanted);
      fetch = Math.min(AUDIT_QUERY_MAX_LIMIT, wanted + (rows.length - kept.length));
    }
  }
}
