import { Body, Controller, Get, Post, Query, Res, UseFilters, UseGuards } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import {
  EntitlementService,
  matchTagRules,
  normalizeTarget,
  formatTarget,
  parseTagRules,
  splitTagRules,
  TagRuleError,
} from '@gatehouse/entitlements';
import { parseExpiry } from '@gatehouse/members';
import { Clock } from '@gatehouse/observability';
import { PullThroughService } from '@gatehouse/pull-through';
import { ConsoleAuditRecorder } from './console-audit.recorder';
import { ConsoleErrorsFilter } from './console-errors.filter';
import { AdminOnly, ConsoleGuard, ConsoleRefusal, Staff } from './console.guard';
import { csrfField, errorBox, esc, layout } from './console-html';
import { sendHtml } from './console-http';
import type { StaffSession } from './console-session.store';

type Form = Record<string, string | undefined>;
const text = (v: unknown, max = 1000) => (typeof v === 'string' ? v.trim().slice(0, max) : '');

export interface RulePreview {
  /** Null when the upstream list could not be read (unknown repository, or not an image). */
  tags: string[] | null;
  admitted: string[];
  /** Admitted by the current grant and no longer by the proposed rules. */
  stops: string[];
  /** Newly admitted by the proposed rules. */
  starts: string[];
}

/** Which upstream tags the proposed rules admit, by THE matcher, beside what the current rules admit. */
export function previewRules(
  tags: readonly string[] | null,
  proposed: readonly string[],
  current: readonly string[] | null,
  how: EntitlementService['tagCanonicalization'],
): RulePreview {
  if (!tags) return { tags: null, admitted: [], stops: [], starts: [] };
  const admitted = tags.filter((t) => matchTagRules(proposed, t, how));
  const before = current ? tags.filter((t) => matchTagRules(current, t, how)) : [];
  return {
    tags: [...tags],
    admitted,
    stops: before.filter((t) => !admitted.includes(t)),
    starts: admitted.filter((t) => !before.includes(t)),
  };
}

const list = (tags: string[], empty: string) =>
  tags.length
    ? `<ul class="tags">${tags.map((t) => `<li><code>${esc(t)}</code></li>`).join('')}</ul>`
    : `<p class="empty">${esc(empty)}</p>`;

/** Grant with a preview: the rule editor shows what the rules admit before anything is saved. */
@Controller('console/grant')
@UseGuards(ConsoleGuard)
@UseFilters(ConsoleErrorsFilter)
export class ConsoleGrantController {
  constructor(
    private readonly entitlements: EntitlementService,
    private readonly pull: PullThroughService,
    private readonly recorder: ConsoleAuditRecorder,
    private readonly clock: Clock,
  ) {}

  @Get()
  @AdminOnly()
  async preview(@Res() reply: FastifyReply, @Staff() staff: StaffSession, @Query() q: Form): Promise<void> {
    const member = text(q.member, 200);
    const repository = text(q.repository, 300);
    const tagsText = text(q.tags);
    const expires = text(q.expires, 100);
    if (!member || !repository || !tagsText)
      throw new ConsoleRefusal(400, 'a grant needs a member, a repository and tag rules', 'grant_incomplete');
    let rules: string[];
    let problem: string | null = null;
    try {
      rules = parseTagRules(splitTagRules(tagsText)).map((r) => r.rule);
    } catch (e) {
      if (!(e instanceof TagRuleError)) throw e;
      rules = [];
      problem = e.message;
    }
    const target = normalizeTarget(repository);
    const canonical = formatTarget(target);
    const existing = (await this.entitlements.list({ username: member, repository: canonical }))[0] ?? null;
    let body = `<form method="get" action="/console/grant" class="card">
<input type="hidden" name="member" value="${esc(member)}">
<div class="row"><label for="repository">Target</label><input id="repository" name="repository" value="${esc(canonical)}"></div>
<div class="row"><label for="tags">Tag rules (comma-separated)</label><input id="tags" name="tags" value="${esc(tagsText)}"></div>
<div class="row"><label for="expires">Expires (optional)</label><input id="expires" name="expires" value="${esc(expires)}" placeholder="90d"></div>
<button type="submit">Preview again</button></form>`;
    if (problem) {
      body += errorBox(`Fix the rules: ${problem}`);
    } else {
      const tags = target.kind === 'image' ? ((await this.pull.listTags(target.name))?.tags ?? null) : null;
      const p = previewRules(tags, rules, existing?.tagRules ?? null, this.entitlements.tagCanonicalization);
      body += `<section class="card" aria-labelledby="preview"><h2 id="preview">What ${esc(member)} could pull</h2>`;
      if (p.tags === null) {
        body += `<p class="muted">${
          target.kind === 'image'
            ? 'The upstream lists no such repository, so no tag is admitted now.'
            : 'Previews list image tags; for releases and packages the rules are checked when a download is asked for.'
        }</p>`;
      } else {
        body += `<p>${p.admitted.length} of ${p.tags.length} upstream tags admitted now.</p>
<h3>Admitted</h3>${list(p.admitted, 'No upstream tag matches these rules.')}`;
        if (existing) {
          body += `<h3>Newly admitted</h3>${list(p.starts, 'None.')}<h3>No longer admitted</h3>${list(p.stops, 'None.')}`;
        }
      }
      body += `<form method="post" action="/console/grant">${csrfField(staff)}
<input type="hidden" name="member" value="${esc(member)}"><input type="hidden" name="repository" value="${esc(canonical)}">
<input type="hidden" name="tags" value="${esc(rules.join(','))}"><input type="hidden" name="expires" value="${esc(expires)}">
<button type="submit" class="primary">${existing ? 'Replace the grant' : 'Grant'} ${esc(canonical)} to ${esc(member)}</button></form></section>`;
    }
    sendHtml(reply, layout('Grant with preview', body, staff, '/console/members'));
  }

  @Post()
  @AdminOnly()
  async grant(@Res() reply: FastifyReply, @Staff() staff: StaffSession, @Body() body: Form): Promise<void> {
    const now = new Date(this.clock.now());
    const expires = text(body.expires, 100);
    const { entitlement: e, created } = await this.entitlements.grant(
      text(body.member, 200),
      text(body.repository, 300),
      splitTagRules(text(body.tags)),
      { expiresAt: expires ? parseExpiry(expires, now) : null, note: null },
    );
    this.recorder.record(
      'admin.entitlement.grant',
      staff,
      'allowed',
      {
        memberId: e.memberId,
        username: e.member?.username,
        repository: e.repository,
        httpStatus: created ? 201 : 200,
      },
      { tagRules: e.tagRules, expiresAt: e.expiresAt, created },
    );
    void reply.redirect(
      `/console/members/${encodeURIComponent(e.member?.username ?? text(body.member))}`,
      303,
    );
  }
}
