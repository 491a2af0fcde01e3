import { Controller, Get, Query, Req, Res, UseFilters, UseGuards } from '@nestjs/common';
import { plainToInstance } from 'class-transformer';
import { validateSync } from 'class-validator';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { auditCsv, AuditEvent } from '@gatehouse/audit';
import { AdminAuditController } from '../admin/admin-audit.controller';
import { AuditQueryDto } from '../admin/admin.dto';
import { auditTable } from './console-audit-table';
import { ConsoleAuditRecorder } from './console-audit.recorder';
import { ConsoleErrorsFilter } from './console-errors.filter';
import { ConsoleGuard, ConsoleRefusal, Staff } from './console.guard';
import { esc, layout, query } from './console-html';
import { sendHtml } from './console-http';
import type { StaffSession } from './console-session.store';

const FILTERS = ['member', 'repository', 'kind', 'action', 'outcome', 'reason', 'since', 'until'] as const;
type Filters = Partial<Record<(typeof FILTERS)[number], string>>;

/** The filters from a query string, empty ones dropped, validated by the admin API's own DTO. */
export function auditFilters(q: Record<string, unknown>, extra: Record<string, unknown> = {}): AuditQueryDto {
  const plain: Record<string, unknown> = { ...extra };
  for (const f of FILTERS)
    if (typeof q[f] === 'string' && (q[f] as string).trim()) plain[f] = (q[f] as string).trim();
  const dto = plainToInstance(AuditQueryDto, plain);
  const problems = validateSync(dto, { whitelist: true, forbidNonWhitelisted: true });
  if (problems.length) {
    const messages = problems.flatMap((p) => Object.values(p.constraints ?? {}));
    throw new ConsoleRefusal(400, messages.join('; '), 'audit_filter_invalid');
  }
  return dto;
}

/** Audit search with keyset paging (the admin API's), CSV export and a live tail over SSE. */
@Controller('console/audit')
@UseGuards(ConsoleGuard)
@UseFilters(ConsoleErrorsFilter)
export class ConsoleAuditController {
  constructor(
    private readonly admin: AdminAuditController,
    private readonly recorder: ConsoleAuditRecorder,
  ) {}

  @Get()
  async page(@Res() reply: FastifyReply, @Staff() staff: StaffSession, @Query() q: Record<string, string>) {
    const filters = auditFilters(q, { limit: 50, ...(q.cursor ? { cursor: q.cursor } : {}) });
    const { items, nextCursor } = await this.admin.find(filters);
    const values: Filters = Object.fromEntries(FILTERS.map((f) => [f, filters[f]]));
    const field = (name: keyof Filters, label: string, hint = '') =>
      `<div class="field"><label for="f-${name}">${label}</label><input id="f-${name}" name="${name}" value="${esc(values[name] ?? '')}"${hint ? ` placeholder="${esc(hint)}"` : ''}></div>`;
    const select = (name: 'kind' | 'outcome', label: string, options: string[]) =>
      `<div class="field"><label for="f-${name}">${label}</label><select id="f-${name}" name="${name}">${[
        '',
        ...options,
      ]
        .map((o) => `<option value="${o}"${values[name] === o ? ' selected' : ''}>${o || 'any'}</option>`)
        .join('')}</select></div>`;
    const outcome = select('outcome', 'Outcome', ['allowed', 'denied', 'error']);
    const kind = select('kind', 'Kind', ['image', 'releases', 'packages']);
    const qs = query(values);
    const body = `<form method="get" action="/console/audit" class="card filters">
${field('member', 'Member')}${field('repository', 'Repository')}${kind}${field('action', 'Action', 'manifest.get')}${outcome}
${field('reason', 'Reason')}${field('since', 'Since', '24h or 2026-01-01')}${field('until', 'Until')}
<button type="submit">Filter</button> <a class="button" href="/console/audit/export.csv${esc(qs)}" download>Export CSV</a>
</form>
<section aria-labelledby="live" class="card"><h2 id="live">Live tail</h2>
<p><button type="button" id="tail-toggle" data-stream="/console/audit/stream${esc(qs)}">Start the live tail</button>
<span id="tail-state" role="status" aria-live="polite">Stopped.</span></p>
<ul id="tail" class="tail" aria-label="New events"></ul></section>
${auditTable(items, 'Audit events, newest first')}
${nextCursor ? `<p><a class="button" rel="next" href="/console/audit${esc(query({ ...values, cursor: nextCursor }))}">Older events</a></p>` : ''}`;
    sendHtml(reply, layout('Audit', body, staff, '/console/audit'));
  }

  @Get('export.csv')
  async export(@Res() reply: FastifyReply, @Staff() staff: StaffSession, @Query() q: Record<string, string>) {
    const filters = auditFilters(q, { limit: 1000 });
    const events: AuditEvent[] = [];
    let cursor: string | undefined;
    // At most 10 000 rows a file: the CLI exports more.
    for (let i = 0; i < 10; i++) {
      const page = await this.admin.find(Object.assign(new AuditQueryDto(), filters, { cursor }));
      events.push(...page.items);
      if (!page.nextCursor) break;
      cursor = page.nextCursor;
    }
    this.recorder.record(
      'console.audit.export',
      staff,
      'allowed',
      {},
      { filters: { ...filters }, rows: events.length },
    );
    void reply
      .header('content-type', 'text/csv; charset=utf-8')
      .header('content-disposition', 'attachment; filename="gatehouse-audit.csv"')
      .header('x-content-type-options', 'nosniff')
      .header('cache-control', 'no-store')
      .send(auditCsv(events));
  }

  /**
   * New events matching the filters as Server-Sent Events (`event: audit`, the row as JSON),
   * polled from the database every second, so every replica's pulls appear.
   */
  @Get('stream')
  async stream(
    @Req() request: FastifyRequest,
    @Res() reply: FastifyReply,
    @Query() q: Record<string, string>,
  ) {
    const filters = auditFilters(q, { limit: 100 });
    let since = new Date(Date.now() - 2_000);
    const seen = new Set<string>();
    reply.hijack();
    const raw = reply.raw;
    raw.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
      connection: 'keep-alive',
    });
    raw.write(': live tail\nretry: 3000\n\n');
    let stopped = false;
    const stop = () => {
      stopped = true;
    };
    request.raw.once('close', stop);
    while (!stopped) {
      try {
        const { items } = await this.admin.find(
          Object.assign(new AuditQueryDto(), filters, { since: since.toISOString(), until: undefined }),
        );
        for (const e of [...items].reverse()) {
          if (seen.has(e.id)) continue;
          seen.add(e.id);
          raw.write(`event: audit\nid: ${e.id}\ndata: ${JSON.stringify(e)}\n\n`);
          if (e.occurredAt > since) since = new Date(e.occurredAt.getTime() - 1_000);
        }
        if (seen.size > 5_000) seen.clear();
        raw.write(': ping\n\n');
      } catch {
        raw.write('event: problem\ndata: "the audit log could not be read; retrying"\n\n');
      }
      await new Promise((r) => setTimeout(r, 1_000));
    }
    raw.end();
  }
}
