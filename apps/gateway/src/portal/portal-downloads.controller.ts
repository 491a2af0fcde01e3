import { Controller, Get, Req, Res, UseFilters, UseGuards } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { DownloadCaller, DownloadReply, DownloadRequest, DownloadsService } from '@gatehouse/downloads';
import { Entitlement, EntitlementService } from '@gatehouse/entitlements';
import { Clock } from '@gatehouse/observability';
import { OciError } from '@gatehouse/oci';
import { sendHtml } from '../console/console-http';
import { PortalErrorsFilter } from './portal-errors.filter';
import { portalLayout } from './portal-html';
import { PortalGuard, PortalPrincipal, Principal } from './portal.guard';
import {
  grantLine,
  ListedPackageVersion,
  ListedRelease,
  packageCard,
  releaseCard,
} from './portal-downloads-view';

/**
 * "What I may download": each live releases grant and each live packages grant, listed through
 * DownloadsService's own listings (the same decisions and `download.list` audit rows as
 * `GET /downloads/releases/<owner>/<repo>` and `GET /downloads/packages/<owner>/<name>`), the
 * signed-in member as principal; links, curl and wget lines go to the same /downloads/ routes.
 */
@Controller('portal')
@UseGuards(PortalGuard)
@UseFilters(PortalErrorsFilter)
export class PortalDownloadsController {
  constructor(
    private readonly entitlements: EntitlementService,
    private readonly downloads: DownloadsService,
    private readonly clock: Clock,
  ) {}

  @Get('downloads')
  async list(
    @Req() request: FastifyRequest,
    @Res() reply: FastifyReply,
    @Principal() who: PortalPrincipal,
  ): Promise<void> {
    const [releases, packages] = await Promise.all([
      this.entitlements.liveEntitlements(who.member.id, 'releases'),
      this.entitlements.liveEntitlements(who.member.id, 'packages'),
    ]);
    const now = this.clock.date();
    const req: DownloadRequest = {
      method: 'GET',
      signal: new AbortController().signal,
      baseUrl: `${request.protocol}://${request.host}`,
    };
    const username = who.member.username;
    let body = `<section aria-labelledby="releases"><h2 id="releases">Releases</h2>`;
    if (!releases.length) body += `<p class="empty">No releases are granted to you now.</p>`;
    for (const e of releases) {
      const [owner, repo] = e.repository.split('/');
      const listed = await this.listed(() =>
        this.downloads.listReleases(this.caller(who, e), owner, repo, req),
      );
      const items = (listed as { releases?: ListedRelease[] } | null)?.releases ?? [];
      body += releaseCard(e.repository, grantLine(e.tagRules, e.expiresAt, now), items, username);
    }
    body += `</section><section aria-labelledby="packages"><h2 id="packages">Generic packages</h2>`;
    if (!packages.length) body += `<p class="empty">No generic packages are granted to you now.</p>`;
    for (const e of packages) {
      const [owner, name] = e.repository.split('/');
      const listed = await this.listed(() =>
        this.downloads.listPackage(this.caller(who, e), owner, name, req),
      );
      const items = (listed as { versions?: ListedPackageVersion[] } | null)?.versions ?? [];
      body += packageCard(e.repository, grantLine(e.tagRules, e.expiresAt, now), items, username);
    }
    body += `</section>`;
    sendHtml(reply, portalLayout('What I may download', body, who));
  }

  /** The member as the download pipeline would have left them, with the grant already loaded. */
  private caller(who: PortalPrincipal, e: Entitlement): DownloadCaller {
    const kind = e.kind === 'packages' ? 'packages' : 'releases';
    return {
      principal: { memberId: who.member.id, username: who.member.username },
      grant: { kind, name: e.repository, entitlement: e },
    };
  }

  /** A listing's body; a refusal (nothing published upstream) is an empty card, a failure the error page. */
  private async listed(list: () => Promise<DownloadReply>): Promise<Record<string, unknown> | null> {
    try {
      return (await list()).body as Record<string, unknown>;
    } catch (err) {
      if (!(err instanceof OciError) || err.status >= 500) throw err;
      return null;
    }
  }
}
