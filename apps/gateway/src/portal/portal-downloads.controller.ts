import { Controller, Get, Req, Res, UseFilters, UseGuards } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { DownloadsService } from '@gatehouse/downloads';
import { Entitlement, EntitlementService } from '@gatehouse/entitlements';
import { OciError } from '@gatehouse/oci';
import { esc } from '../console/console-html';
import { sendHtml } from '../console/console-http';
import { PortalErrorsFilter } from './portal-errors.filter';
import { portalLayout } from './portal-html';
import { PortalGuard, PortalPrincipal, Principal } from './portal.guard';
import { curlLine, humanSize, wgetLine } from './portal-view';

interface ListedRelease {
  tag: string;
  assets: Array<{ name: string; size: number; sha256: string | null; url: string }>;
}

/**
 * "What I may download": each live releases grant listed through DownloadsService's own listing
 * (the same decisions and audit as `GET /downloads/releases/<owner>/<repo>`), the signed-in member
 * as principal; links and curl lines go to the same /downloads/ routes.
 */
@Controller('portal')
@UseGuards(PortalGuard)
@UseFilters(PortalErrorsFilter)
export class PortalDownloadsController {
  constructor(
    private readonly entitlements: EntitlementService,
    private readonly downloads: DownloadsService,
  ) {}

  @Get('downloads')
  async list(
    @Req() request: FastifyRequest,
    @Res() reply: FastifyReply,
    @Principal() who: PortalPrincipal,
  ): Promise<void> {
    const grants = await this.entitlements.liveEntitlements(who.member.id, 'releases');
    let body = grants.length ? '' : `<p class="empty">No releases are granted to you now.</p>`;
    for (const e of grants) body += await this.releases(request, who, e);
    sendHtml(reply, portalLayout('What I may download', body, who));
  }

  private async releases(request: FastifyRequest, who: PortalPrincipal, e: Entitlement): Promise<string> {
    const [owner, repo] = e.repository.split('/');
    const head = `<article class="card release" data-repository="${esc(e.repository)}"><h2>${esc(e.repository)}</h2>`;
    let listed: ListedRelease[];
    try {
      const reply = await this.downloads.listReleases(
        {
          principal: { memberId: who.member.id, username: who.member.username },
          grant: { kind: 'releases', name: e.repository, entitlement: e },
        },
        owner,
        repo,
        {
          method: 'GET',
          signal: new AbortController().signal,
          baseUrl: `${request.protocol}://${request.host}`,
        },
      );
      listed = (reply.body as { releases: ListedRelease[] }).releases;
    } catch (err) {
      if (!(err instanceof OciError) || err.status >= 500) throw err;
      listed = [];
    }
    if (!listed.length)
      return `${head}<p class="empty">No published release matches your grant now.</p></article>`;
    return `${head}${listed
      .map(
        (r) =>
          `<h3>${esc(r.tag)}</h3><ul class="files">${r.assets
            .map(
              (a) =>
                `<li><a href="${esc(a.url)}">${esc(a.name)}</a> <span class="size">${esc(humanSize(a.size))}</span>${
                  a.sha256 ? ` <code>sha256:${esc(a.sha256)}</code>` : ''
                }<pre><code>${esc(curlLine(who.member.username, a.url))}</code></pre><pre><code>${esc(
                  wgetLine(who.member.username, a.url),
                )}</code></pre></li>`,
            )
            .join('')}</ul>`,
      )
      .join('')}</article>`;
  }
}
