import { All, applyDecorators, Controller, Req, Res, UseGuards } from '@nestjs/common';
import { AuthorisedDownload, DownloadAccess, DownloadAuthGuard, RoutedDownload } from '@gatehouse/auth';
import { DownloadReply, DownloadRequest, DownloadsService } from '@gatehouse/downloads';
import { DownloadRoute, OciError } from '@gatehouse/oci';
import { BlobStreamSlotGuard, RateLimitGuard, rateLimitSkips } from '@gatehouse/rate-limit';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { abortSignalOf, writeReply } from '../http/reply-writer';
import { setMetricsRoute } from '../http/request-hooks';

/**
 * The download pipeline: parse the path once (libs/oci `parseDownloadPath`: kind-first and the
 * contract's owner-first shapes) and authorise once (DownloadAuthGuard: Basic access key or a
 * Bearer token carrying the route target's download scope, 401 with the Basic challenge; the
 * member's entitlement to the target loaded once), then count the request against the member's
 * limit (RateLimitGuard, the /v2/ per-member budget). File GETs take a stream slot like a blob GET
 * (BlobStreamSlotGuard: one cap per member for blobs and files together, 429 beyond it).
 */
function DownloadPipeline(): ClassDecorator {
  return applyDecorators(
    rateLimitSkips('registry'),
    UseGuards(DownloadAuthGuard, RateLimitGuard, BlobStreamSlotGuard),
  );
}

/** `/downloads/…`: thin; the route is the guard's parse, the decisions are DownloadsService's. */
@Controller('downloads')
@DownloadPipeline()
export class DownloadsController {
  constructor(private readonly downloads: DownloadsService) {}

  @All('*')
  async serve(
    @AuthorisedDownload() who: DownloadAccess,
    @RoutedDownload() route: DownloadRoute,
    @Req() request: FastifyRequest,
    @Res() reply: FastifyReply,
  ): Promise<void> {
    writeReply(reply, await this.answer(who, route, request, reply));
  }

  private answer(
    who: DownloadAccess,
    route: DownloadRoute,
    request: FastifyRequest,
    reply: FastifyReply,
  ): Promise<DownloadReply> {
    const req = downloadRequest(request, reply);
    switch (route.kind) {
      case 'release-list':
        setMetricsRoute(request, '/downloads/releases');
        return this.downloads.listReleases(who, route.owner, route.repo, req);
      case 'release-asset':
        setMetricsRoute(request, '/downloads/releases/asset');
        return this.downloads.releaseAsset(who, route.owner, route.repo, route.tag, route.filename, req);
      case 'package-list':
        setMetricsRoute(request, '/downloads/packages');
        return this.downloads.listPackage(who, route.owner, route.name, req);
      case 'package-version':
        setMetricsRoute(request, '/downloads/packages/version');
        return this.downloads.listPackageFiles(who, route.owner, route.name, route.version, req);
      case 'package-file':
        setMetricsRoute(request, '/downloads/packages/file');
        return this.downloads.packageFile(who, route.owner, route.name, route.version, route.filename, req);
    }
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
