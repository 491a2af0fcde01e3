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
import { DownloadCatalog } from '@gatehouse/downloads';
import { parseExpiry } from '@gatehouse/members';
import { Clock } from '@gatehouse/observability';
import { PullThroughService } from '@gatehouse/pull-through';
import { UpstreamError } from '@gatehouse/upstream';
import { ConsoleAuditRecorder } from './console-audit.recorder';
import { ConsoleErrorsFilter } from './console-errors.filter';
import { AdminOnly, ConsoleGuard, ConsoleRefusal, Staff } from './console.guard';
import { csrfField, errorBox, esc, layout } from './console-html';
import { sendHtml } from './console-http';
import type { StaffSession } from './console-session.store';

type Form = Record<string, string | undefined>;
const text = (v: unknown, max = 1000) => (typeof v === 'string' ? v.trim().slice(0, max) : '');

export interface RulePreview {
  /** Null when the upstream list could not be read (unknown repository or package). */
  tags: string[] | null;
  admitted: string[];
  /** Admitted by the current grant and no longer by the proposed rules. */
  stops: string[];
  /** Newly admitted by the proposed rules. */
  starts: string[];
}

/**
 * Which upstream tags (release tags, package versions) the proposed rules admit, by THE matcher in
 * the kind's form (`EntitlementService.canonicalizationOf`), beside what the current rules admit.
 */
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

/** How the preview names what a target of each kind publishes and what a member does with it. */
const WORDS = {
  image: {
    does: 'pull',
    items: 'upstream tags',
    none: 'The upstream lists no such repository, so no tag is admitted now.',
    nothing: 'No upstream tag matches these rules.',
  },
  releases: {
    does: 'download',
    items: 'published releases',
    none: 'The upstream lists no releases of this repository (or the service token cannot read it), so none is admitted now.',
    nothing: 'No published release matches these rules.',
  },
  packages: {
    does: 'download',
    items: 'published versions',
    none: 'The upstream has no such generic package, so no version is admitted now.',
    nothing: 'No published version matches these rules.',
  },
} as const;

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
    private readonly catalog: DownloadCatalog,
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
      const words = WORDS[target.kind];
      const published = await this.published(target.kind, target.name);
      const how = this.entitlements.canonicalizationOf({ kind: target.kind });
      const p = previewRules(published.tags, rules, existing?.tagRules ?? null, how);
      body += `<section class="card" aria-labelledby="preview"><h2 id="preview">What ${esc(member)} could ${words.does}</h2>`;
      if (p.tags === null) {
        body += `<p class="muted">${esc(published.problem ?? words.none)}</p>`;
      } else {
        body += `<p>${p.admitted.length} of ${p.tags.length} ${words.items} admitted now.</p>
<h3>Admitted</h3>${list(p.admitted, words.nothing)}`;
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

  /**
   * What the target publishes now, newest first: image tags from the pull-through's tag cache,
   * release tags and package versions from DownloadCatalog (cached for OCI_TAG_TTL_SECONDS).
   */
  private async published(
    kind: 'image' | 'releases' | 'packages',
    name: string,
  ): Promise<{ tags: string[] | null; problem: string | null }> {
    if (kind === 'image') return { tags: (await this.pull.listTags(name))?.tags ?? null, problem: null };
    const slash = name.indexOf('/');
    try {
      return {
        tags: await this.catalog.published(kind, name.slice(0, slash), name.slice(slash + 1)),
        problem: null,
      };
    } catch (e) {
      if (!(e instanceof UpstreamError)) throw e;
      return {
        tags: null,
        problem: `The upstream could not be read now (${e.reason}); the gateway log names the fix. Nothing is previewed.`,
      };
    }
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

  /** Revoking an entitlement asks first, naming what the member loses. */
  @Get('revoke')
  @AdminOnly()
  async confirmRevoke(@Res() reply: FastifyReply, @Staff() staff: StaffSession, @Query() q: Form) {
    const member = text(q.member, 200);
    const target = formatTarget(normalizeTarget(text(q.repository, 300)));
    const e = (await this.entitlements.list({ username: member, repository: target }))[0];
    if (!e)
      throw new ConsoleRefusal(404, `${member} has no entitlement to ${target}`, 'entitlement_not_found');
    const back = `/console/members/${encodeURIComponent(member)}`;
    const body = `<form method="post" action="/console/grant/revoke" class="card">${csrfField(staff)}
<input type="hidden" name="member" value="${esc(member)}"><input type="hidden" name="repository" value="${esc(target)}">
<p>Revoke the entitlement of ${esc(member)} to <code>${esc(target)}</code> (rules ${e.tagRules.map((r) => `<code>${esc(r)}</code>`).join(' ')})? Their pulls and downloads of it are refused within seconds.</p>
<button type="submit" class="danger">Revoke the entitlement</button> <a href="${esc(back)}">Cancel</a></form>`;
    sendHtml(reply, layout('Revoke an entitlement', body, staff, '/console/members'));
  }

  @Post('revoke')
  @AdminOnly()
  async revoke(@Res() reply: FastifyReply, @Staff() staff: StaffSession, @Body() body: Form): Promise<void> {
    const e = await this.entitlements.revoke(text(body.member, 200), text(body.repository, 300));
    this.recorder.record(
      'admin.entitlement.revoke',
      staff,
      'allowed',
      { memberId: e.memberId, username: e.member?.username, repository: e.repository, httpStatus: 200 },
      { tagRules: e.tagRules },
    );
    void reply.redirect(
      `/console/members/${encodeURIComponent(e.member?.username ?? text(body.member))}`,
      303,
    );
  }
}
