import {
  All,
  applyDecorators,
  Controller,
  Get,
  Param,
  Req,
  Res,
  UseGuards,
  UseInterceptors,
} from '@nestjs/common';
import { AuthorisedDownload, DownloadAccess, DownloadAuthGuard, DownloadRouteTarget } from '@gatehouse/auth';
import { DownloadRequest, DownloadsService } from '@gatehouse/downloads';
import { OciError } from '@gatehouse/oci';
import { BlobStreamSlotInterceptor, RateLimitGuard, rateLimitSkips } from '@gatehouse/rate-limit';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { abortSignalOf, writeReply } from '../http/reply-writer';
import { setMetricsRoute } from '../http/request-hooks';

/**
 * The download pipeline: authorise once (DownloadAuthGuard: Basic access key or a Bearer token
 * carrying the route target's download scope, 401 with the Basic challenge; the member's
 * entitlement to the target loaded once), then count the request against the member's limit
 * (RateLimitGuard, the /v2/ per-member budget). The file routes take a stream slot like a blob GET
 * (BlobStreamSlotInterceptor: one cap per member for blobs and files together, 429 beyond it).
 */
function DownloadPipeline(): ClassDecorator {
  return applyDecorators(rateLimitSkips('registry'), UseGuards(DownloadAuthGuard, RateLimitGuard));
}

/** `/downloads/…`: thin; the decisions are DownloadsService's (libs/downloads). */
@Controller('downloads')
@DownloadPipeline()
export class DownloadsController {
  constructor(private readonly downloads: DownloadsService) {}

  @Get(':owner/:repo/releases')
  @DownloadRouteTarget('releases', (p) => `${p.owner}/${p.repo}`)
  async releases(
    @AuthorisedDownload() who: DownloadAccess,
    @Param('owner') owner: string,
    @Param('repo') repo: string,
    @Req() request: FastifyRequest,
    @Res() reply: FastifyReply,
  ): Promise<void> {
    setMetricsRoute(request, '/downloads/releases');
    writeReply(reply, await this.downloads.listReleases(who, owner, repo, downloadRequest(request, reply)));
  }

  @All(':owner/packages/:name/:version/:filename')
  @DownloadRouteTarget('packages', (p) => `${p.owner}/${p.name}`)
  @UseInterceptors(BlobStreamSlotInterceptor)
  async packageFile(
    @AuthorisedDownload() who: DownloadAccess,
    @Param() p: { owner: string; name: string; version: string; filename: string },
    @Req() request: FastifyRequest,
    @Res() reply: FastifyReply,
  ): Promise<void> {
    setMetricsRoute(request, '/downloads/packages/file');
    const req = downloadRequest(request, reply);
    writeReply(reply, await this.downloads.packageFile(who, p.owner, p.name, p.version, p.filename, req));
  }

  @All(':owner/:repo/releases/:tag/:filename')
  @DownloadRouteTarget('releases', (p) => `${p.owner}/${p.repo}`)
  @UseInterceptors(BlobStreamSlotInterceptor)
  async releaseAsset(
    @AuthorisedDownload() who: DownloadAccess,
    @Param() p: { owner: string; repo: string; tag: string; filename: string },
    @Req() request: FastifyRequest,
    @Res() reply: FastifyReply,
  ): Promise<void> {
    setMetricsRoute(request, '/downloads/releases/asset');
    const req = downloadRequest(request, reply);
    writeReply(reply, await this.downloads.releaseAsset(who, p.owner, p.repo, p.tag, p.filename, req));
  }
}

function downloadRequest(request: FastifyRequest, reply: FastifyReply): DownloadRequest {
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    throw new OciError('UNSUPPORTED', { message: 'downloads are read-only', reason: 'write_method' });
  }
  const range = request.headers.range;
  return {
    method: request.method,
    range: typeof range === 'string' ? range : undefined,
    signal: abortSignalOf(reply),
    baseUrl: `${request.protocol}://${request.host}`,
  };
}
