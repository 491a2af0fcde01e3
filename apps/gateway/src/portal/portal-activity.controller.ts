import { Controller, Get, Res, UseFilters, UseGuards } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { AuditQueryService } from '@gatehouse/audit';
import { esc, time } from '../console/console-html';
import { sendHtml } from '../console/console-http';
import { memberActivity } from './portal-activity';
import { PortalErrorsFilter } from './portal-errors.filter';
import { portalLayout } from './portal-html';
import { PortalGuard, PortalPrincipal, Principal } from './portal.guard';

/** How many of the member's latest audit rows are read (their own actions among them are shown). */
const ROWS = 200;

/** "My activity": the signed-in member's own recent pulls, downloads and refusals. */
@Controller('portal')
@UseGuards(PortalGuard)
@UseFilters(PortalErrorsFilter)
export class PortalActivityController {
  constructor(private readonly audit: AuditQueryService) {}

  @Get('activity')
  async activity(@Res() reply: FastifyReply, @Principal() who: PortalPrincipal): Promise<void> {
    const rows = memberActivity(await this.audit.find({ memberId: who.member.id, limit: ROWS }));
    const body = rows.length
      ? `<table class="activity"><thead><tr><th scope="col">When</th><th scope="col">What</th>
<th scope="col">Asked for</th><th scope="col">Result</th></tr></thead><tbody>${rows
          .map(
            (r) =>
              `<tr><td>${time(r.at)}</td><td>${esc(r.what)}</td><td><code>${esc(r.target)}</code></td><td>${esc(r.result)}</td></tr>`,
          )
          .join('')}</tbody></table>`
      : `<p class="empty">Nothing yet: your pulls and downloads show here.</p>`;
    sendHtml(reply, portalLayout('My activity', body, who));
  }
}
