import { Controller, Get, Query, Res, UseFilters, UseGuards } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { AuditEvent, AuditQueryService } from '@gatehouse/audit';
import { AccessExplainService, formatTarget, normalizeTarget } from '@gatehouse/entitlements';
import { PullThroughService } from '@gatehouse/pull-through';
import { splitImage } from '../admin/admin-explain.controller';
import { auditTable } from './console-audit-table';
import { ConsoleErrorsFilter, knownError } from './console-errors.filter';
import { ConsoleGuard, ConsoleRefusal, Staff } from './console.guard';
import { errorBox, esc, layout, query, time } from './console-html';
import { sendHtml } from './console-http';
import { ConsoleLiveChecks, LiveCheck } from './console-live-checks';
import type { StaffSession } from './console-session.store';

/** A request id in pasted text: the gateway's ids are UUIDs (a client's error text or a log line). */
export function findRequestId(text: string): string | null {
  const m = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/i.exec(text);
  return m ? m[0].toLowerCase() : null;
}

/** Reasons an entitlement fixes, so admins get a grant (after a preview) as the fix. */
const GRANT_FIXES = new Set(['repository_not_entitled', 'tag_not_entitled', 'entitlement_expired']);

/** "Why can't X pull Y?": the explain service's verdict, in order, with the audit rows behind it. */
@Controller('console')
@UseGuards(ConsoleGuard)
@UseFilters(ConsoleErrorsFilter)
export class ConsoleExplainController {
  constructor(
    private readonly access: AccessExplainService,
    private readonly pull: PullThroughService,
    private readonly audit: AuditQueryService,
    private readonly live: ConsoleLiveChecks,
  ) {}

  @Get('explain')
  async home(
    @Res() reply: FastifyReply,
    @Staff() staff: StaffSession,
    @Query() q: Record<string, string | undefined>,
  ): Promise<void> {
    const member = (q.member ?? '').trim();
    const image = (q.image ?? '').trim();
    const pasted = (q.request ?? '').trim();
    let body = form(member, image, pasted);
    if (pasted || (member && image)) {
      try {
        body += await this.explain(staff, member, image, pasted);
      } catch (e) {
        const known = knownError(e);
        if (!known) throw e;
        body += errorBox(known.message);
      }
    } else if (member || image) {
      body += errorBox(
        'Give both a member and an image, release or package reference, or paste a request id.',
      );
    }
    sendHtml(reply, layout('Why can’t they pull it?', body, staff, '/console/explain'));
  }

  private async explain(staff: StaffSession, member: string, image: string, pasted: string): Promise<string> {
    let seen: AuditEvent | null = null;
    if (pasted) {
      const requestId = findRequestId(pasted);
      if (!requestId)
        throw new ConsoleRefusal(400, 'no request id (a UUID) in the pasted text', 'request_id_missing');
      const rows = await this.audit.find({ requestId, limit: 20 });
      seen = rows.find((r) => r.repository && r.username) ?? rows[0] ?? null;
      if (!seen)
        throw new ConsoleRefusal(404, `no audit event has request id ${requestId}`, 'request_unknown');
      if (!seen.username || !seen.repository)
        throw new ConsoleRefusal(
          400,
          `request ${requestId} names no member and repository (${seen.action})`,
          'request_vague',
        );
      member = seen.username;
      const repo = seen.repository;
      image = seen.reference ? `${repo}${repo.includes(':') ? '@' : ':'}${seen.reference}` : repo;
    }
    const { repository, tag } = splitImage(image);
    const x = await this.access.explain(member, repository, tag, this.pull);
    const { verdict } = x;
    const who = x.member?.username ?? member;
    const canonical = formatTarget(normalizeTarget(repository));
    const recent = await this.audit.explainEvents({ username: who, memberId: x.member?.id }, canonical);
    // Then what the database cannot tell: the member's request limit and the upstream.
    const live: LiveCheck[] = x.member ? await this.live.run(x.member.id, canonical, tag) : [];
    const checks = [...verdict.checks, ...live]
      .map(
        (c) =>
          `<li class="${c.ok ? 'ok' : 'no'}"><span class="mark">${c.ok ? 'ok' : 'NO'}</span> <strong>${esc(c.check)}</strong>: ${esc(c.detail)}</li>`,
      )
      .join('\n');
    // Entitled, yet refused now: a limit or the upstream answers instead.
    const liveFailure = verdict.allowed ? live.find((c) => !c.ok) : undefined;
    const reason = verdict.reason ?? liveFailure?.reason ?? null;
    const heading = !verdict.allowed
      ? 'Not allowed'
      : liveFailure
        ? 'Allowed, but not served now'
        : 'Allowed';
    const target = `${canonical}${tag ? (canonical.includes(':') ? '@' : ':') + tag : ''}`;
    let fix = verdict.fix ? `<p><strong>To allow it:</strong> ${esc(verdict.fix)}</p>` : '';
    if (
      staff.role === 'admin' &&
      !verdict.allowed &&
      x.member &&
      verdict.reason &&
      GRANT_FIXES.has(verdict.reason)
    ) {
      const href = `/console/grant${query({ member: x.member.username, repository: canonical, tags: tag ?? '*' })}`;
      fix += `<p><a class="button primary" href="${esc(href)}">Preview the grant that fixes it</a></p>`;
    }
    return `<section aria-labelledby="verdict" class="card">
<h2 id="verdict" class="${verdict.allowed && !liveFailure ? 'allowed' : 'denied'}">${heading}: ${esc(who)} → ${esc(target)}${
      reason ? ` <span class="reason">(${esc(reason)})</span>` : ''
    }</h2>
${seen ? `<p>From request <code>${esc(seen.requestId)}</code> at ${time(seen.occurredAt)}: ${esc(seen.action)} ${esc(seen.outcome)}${seen.reason ? ` (${esc(seen.reason)})` : ''}, HTTP ${esc(seen.httpStatus ?? '')}.</p>` : ''}
<ol class="checks">${checks}</ol>
<p><strong>What the client saw:</strong> ${esc(liveFailure?.sees ?? verdict.memberSees)}</p>
${fix}
<p class="muted">Checked ${time(x.checkedAt)}.</p>
</section>
<section aria-labelledby="recent"><h2 id="recent">Matching audit events</h2>${auditTable(recent.target, `latest events of ${who} for ${canonical}, refusals first`)}</section>${
      recent.loginRefusals.length
        ? `<section aria-labelledby="logins"><h2 id="logins">Refused logins of ${esc(who)}</h2>${auditTable(recent.loginRefusals, `refused logins of ${who} (any target)`)}</section>`
        : ''
    }`;
  }
}

function form(member: string, image: string, pasted: string): string {
  return `<form method="get" action="/console/explain" class="card explain">
<p>Ask about a member and a reference, or paste a request id (or the client’s whole error text).</p>
<div class="row"><label for="member">Member</label><input id="member" name="member" value="${esc(member)}" autocomplete="off"></div>
<div class="row"><label for="image">Image, release or package</label><input id="image" name="image" value="${esc(image)}" placeholder="acme/app:v1.2.3" autocomplete="off"></div>
<div class="row"><label for="request">Request id or error text</label><textarea id="request" name="request" rows="2">${esc(pasted)}</textarea></div>
<button type="submit">Explain</button>
</form>`;
}
