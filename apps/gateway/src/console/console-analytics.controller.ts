import { Controller, Get, Query, Res, UseFilters, UseGuards } from '@nestjs/common';
import bytes from 'bytes';
import type { FastifyReply } from 'fastify';
import { AuditAnalyticsService, CountBy, DailyActivity, firstDay } from '@gatehouse/audit';
import { Clock } from '@gatehouse/observability';
import { ConsoleErrorsFilter } from './console-errors.filter';
import { ConsoleGuard, ConsoleRefusal, Staff } from './console.guard';
import { CHART_ASSETS, esc, layout, query } from './console-html';
import { sendHtml } from './console-http';
import type { StaffSession } from './console-session.store';

/** Every UTC day of the window, days without activity as zeros, so the chart's axis is the window. */
export function everyDay(daily: readonly DailyActivity[], days: number, now: Date): DailyActivity[] {
  const known = new Map(daily.map((d) => [d.day, d]));
  const start = Date.parse(`${firstDay({ days, now })}T00:00:00Z`);
  return Array.from({ length: days }, (_, i) => {
    const day = new Date(start + i * 86_400_000).toISOString().slice(0, 10);
    return known.get(day) ?? { day, pulls: 0, downloads: 0, bytes: 0, cacheHits: 0, cacheLookups: 0 };
  });
}

const pct = (n: number | null) => (n === null ? '–' : `${(n * 100).toFixed(0)} %`);

function countTable(caption: string, head: string, rows: CountBy[], link?: (key: string) => string): string {
  if (rows.length === 0) return `<p class="empty">${esc(caption)}: none in this period.</p>`;
  return `<table><caption>${esc(caption)}</caption><thead><tr><th scope="col">${esc(head)}</th><th scope="col">Count</th></tr></thead><tbody>${rows
    .map(
      (r) =>
        `<tr><td>${link ? `<a href="${esc(link(r.key))}">${esc(r.key)}</a>` : esc(r.key)}</td><td>${r.count}</td></tr>`,
    )
    .join('')}</tbody></table>`;
}

/** Pulls, downloads, bytes, cache hits and refusals per day, and version adoption per repository. */
@Controller('console/analytics')
@UseGuards(ConsoleGuard)
@UseFilters(ConsoleErrorsFilter)
export class ConsoleAnalyticsController {
  constructor(
    private readonly analytics: AuditAnalyticsService,
    private readonly clock: Clock,
  ) {}

  @Get()
  async page(@Res() reply: FastifyReply, @Staff() staff: StaffSession, @Query() q: Record<string, string>) {
    const days = q.days === undefined || q.days === '' ? 30 : Number(q.days);
    if (!Number.isInteger(days) || days < 1 || days > 366)
      throw new ConsoleRefusal(400, 'days must be a whole number from 1 to 366', 'analytics_days');
    const repository = (q.repository ?? '').trim().slice(0, 300) || undefined;
    const member = (q.member ?? '').trim().slice(0, 200) || undefined;
    const now = new Date(this.clock.now());
    const a = await this.analytics.analytics({ days, repository, username: member, now });
    const chartDays = everyDay(a.daily, days, now);
    const here = (extra: Record<string, string | undefined>) =>
      `/console/analytics${query({ days: String(days), repository, member, ...extra })}`;
    const total = a.daily.reduce(
      (t, d) => ({
        pulls: t.pulls + d.pulls,
        downloads: t.downloads + d.downloads,
        bytes: t.bytes + d.bytes,
        hits: t.hits + d.cacheHits,
        lookups: t.lookups + d.cacheLookups,
      }),
      { pulls: 0, downloads: 0, bytes: 0, hits: 0, lookups: 0 },
    );
    const series = JSON.stringify({
      days: chartDays.map((d) => d.day),
      pulls: chartDays.map((d) => d.pulls),
      downloads: chartDays.map((d) => d.downloads),
    });
    const daily = a.daily.length
      ? `<div id="activity-chart" class="chart" data-series="${esc(series)}" role="img" aria-label="Pulls and downloads per day"></div>
<details><summary>The numbers per day</summary><table id="activity-table"><caption>Per UTC day</caption><thead><tr><th scope="col">Day</th><th scope="col">Pulls</th><th scope="col">Downloads</th><th scope="col">Bytes</th><th scope="col">Cache hits</th></tr></thead><tbody>${a.daily
          .map(
            (d) =>
              `<tr><td>${esc(d.day)}</td><td>${d.pulls}</td><td>${d.downloads}</td><td>${esc(bytes(d.bytes) ?? '0B')}</td><td>${pct(d.cacheLookups ? d.cacheHits / d.cacheLookups : null)}</td></tr>`,
          )
          .join('')}</tbody></table></details>`
      : `<p class="empty">Nothing was pulled or downloaded in this period${member || repository ? ' for this filter' : ''}.</p>`;
    let adoption = '';
    if (a.adoption) {
      const x = a.adoption;
      adoption = `<section class="card" aria-labelledby="adoption"><h2 id="adoption">Version adoption: ${esc(x.repository)}</h2>
<p>${x.distinctVersions} versions in use · ${pct(x.shareOnNewestThree)} of members on the newest three · median age of the version in use ${
        x.medianVersionAgeDays === null ? '–' : `${x.medianVersionAgeDays.toFixed(1)} days`
      } (since it was first pulled here)</p>
<table><caption>Versions, newest first</caption><thead><tr><th scope="col">Version</th><th scope="col">Members</th><th scope="col">Pulls</th></tr></thead><tbody>${x.versions
        .map(
          (v) => `<tr><td><code>${esc(v.version)}</code></td><td>${v.members}</td><td>${v.pulls}</td></tr>`,
        )
        .join('')}</tbody></table>
<table><caption>Members and the versions they pulled (latest first)</caption><thead><tr><th scope="col">Member</th><th scope="col">In use</th><th scope="col">Pulled</th></tr></thead><tbody>${x.members
        .map(
          (m) =>
            `<tr><td>${esc(m.username)}</td><td><code>${esc(m.current)}</code></td><td>${m.versions.map((v) => `<code>${esc(v)}</code>`).join(' ')}</td></tr>`,
        )
        .join('')}</tbody></table></section>`;
    }
    const body = `<form method="get" action="/console/analytics" class="card filters">
<div class="field"><label for="a-days">Days</label><input id="a-days" name="days" type="number" min="1" max="366" value="${days}"></div>
<div class="field"><label for="a-repository">Repository</label><input id="a-repository" name="repository" value="${esc(repository ?? '')}"></div>
<div class="field"><label for="a-member">Member</label><input id="a-member" name="member" value="${esc(member ?? '')}"></div>
<button type="submit">Show</button></form>
<p class="summary">${total.pulls} pulls · ${total.downloads} downloads · ${esc(bytes(total.bytes) ?? '0B')} served · cache hit ratio ${pct(
      total.lookups ? total.hits / total.lookups : null,
    )} (last ${days} UTC days)</p>
${daily}
${adoption}
<div class="columns">
${countTable('Pulls by member', 'Member', a.byMember, (k) => here({ member: k }))}
${countTable('Pulls by repository', 'Repository', a.byRepository, (k) => here({ repository: k }))}
${countTable('Refusals by reason', 'Reason', a.refusals)}
</div>
${a.adoption ? '' : '<p class="muted">Pick a repository (a link above) for its version adoption.</p>'}`;
    sendHtml(reply, layout('Analytics', body, staff, '/console/analytics', CHART_ASSETS));
  }
}
