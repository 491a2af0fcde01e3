import { Readable } from 'node:stream';
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
import { AuthenticatedDownload, DownloadAuthGuard, DownloadIdentity } from '@gatehouse/auth';
import { DownloadReply, DownloadRequest, DownloadsService } from '@gatehouse/downloads';
import { DownloadRoute, OciError, parseDownloadPath } from '@gatehouse/oci';
import { BlobStreamSlotInterceptor, RateLimitGuard, rateLimitSkips } from '@gatehouse/rate-limit';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { setMetricsRoute } from '../http/request-hooks';

/**
 * The download pipeline: authenticate once (DownloadAuthGuard: Basic access key or Bearer
 * token, 401 with the Basic challenge), then count the request against the member's limit
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

  @Get('releases/:owner/:repo')
  async releases(
    @AuthenticatedDownload() who: DownloadIdentity,
    @Param('owner') owner: string,
    @Param('repo') repo: string,
    @Req() request: FastifyRequest,
    @Res() reply: FastifyReply,
  ): Promise<void> {
    setMetricsRoute(request, '/downloads/releases');
    send(reply, await this.downloads.listReleases(who, owner, repo, downloadRequest(request, reply)));
  }

  @All('packages/*')
  @UseInterceptors(BlobStreamSlotInterceptor)
  async packageFile(
    @AuthenticatedDownload() who: DownloadIdentity,
    @Req() request: FastifyRequest,
    @Res() reply: FastifyReply,
  ): Promise<void> {
    setMetricsRoute(request, '/downloads/packages/file');
    const req = downloadRequest(request, reply);
    const p = routeOf(request, 'package-file');
    send(reply, await this.downloads.packageFile(who, p.owner, p.name, p.version, p.filename, req));
  }

  @All('releases/*')
  @UseInterceptors(BlobStreamSlotInterceptor)
  async releaseAsset(
    @AuthenticatedDownload() who: DownloadIdentity,
    @Req() request: FastifyRequest,
    @Res() reply: FastifyReply,
  ): Promise<void> {
    setMetricsRoute(request, '/downloads/releases/asset');
    const req = downloadRequest(request, reply);
    const p = routeOf(request, 'release-asset');
    send(reply, await this.downloads.releaseAsset(who, p.owner, p.repo, p.tag, p.filename, req));
  }

  /** The shapes before kind-first paths: a 308 to where the same request lives now. */
  @All('*')
  moved(@Req() request: FastifyRequest, @Res() reply: FastifyReply): void {
    setMetricsRoute(request, '/downloads/moved');
    const parsed = parseDownloadPath(request.url);
    if (!('redirect' in parsed))
      throw new OciError('NAME_UNKNOWN', { message: 'not found', reason: 'no_route' });
    reply.status(308).header('Location', parsed.redirect).header('Cache-Control', 'no-store').send();
  }
}

/** The file route of a path (libs/oci `parseDownloadPath`), or the one 404. */
function routeOf<K extends DownloadRoute['kind']>(
  request: FastifyRequest,
  kind: K,
): Extract<DownloadRoute, { kind: K }> {
  const parsed = parseDownloadPath(request.url);
  if ('route' in parsed && parsed.route.kind === kind)
    return parsed.route as Extract<DownloadRoute, { kind: K }>;
  throw new OciError('NAME_UNKNOWN', { message: 'not found', reason: 'no_route' });
}

function downloadRequest(request: FastifyRequest, reply: FastifyReply): DownloadRequest {
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    throw new OciError('UNSUPPORTED', { message: 'downloads are read-only', reason: 'write_method' });
  }
  const aborted = new AbortController();
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) aborted.abort();
  });
  const range = request.headers.range;
  return {
    method: request.method,
    range: typeof range === 'string' ? range : undefined,
    signal: aborted.signal,
    baseUrl: `${request.protocol}://${request.host}`,
  };
}

function send(reply: FastifyReply, result: DownloadReply): void {
  reply.status(result.status).headers(result.headers);
  const body = result.body;
  if (body === undefined) return void reply.send();
  if (body instanceof Readable) {
    // A body that fails before its first byte is answered with an error, without this reply's headers.
    body.once('error', () => {
      if (reply.raw.headersSent) return;
      for (const name of Object.keys(result.headers)) {
        reply.removeHeader(name);
        reply.raw.removeHeader(name);
      }
    });
    return void reply.send(body);
  }
  reply.header('Content-Type', 'application/json; charset=utf-8').send(JSON.stringify(body));
}
