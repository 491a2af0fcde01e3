import { Readable } from 'node:stream';
import { All, Controller, Req, Res } from '@nestjs/common';
import { GatewayConfig } from '@gatehouse/config';
import { OciError, OciRoute, parseOciPath } from '@gatehouse/oci';
import { RateLimited } from '@gatehouse/rate-limit';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { setMetricsRoute } from '../http/request-hooks';
import { RegistryReply, RegistryService } from './registry.service';

const READ_METHODS = new Set(['GET', 'HEAD']);

/**
 * Everything under /v2/ arrives here and is parsed once by the spec grammar (names nest, so
 * no per-route patterns). The raw URL is parsed, not Fastify's decoded params: names, tags and
 * digests never need percent-encoding, so an encoded byte is refused rather than decoded into
 * a separator.
 */
@Controller()
@RateLimited('registry')
export class RegistryController {
  constructor(
    private readonly config: GatewayConfig,
    private readonly registry: RegistryService,
  ) {}

  @All(['v2', 'v2/*'])
  async handle(@Req() request: FastifyRequest, @Res() reply: FastifyReply): Promise<void> {
    reply.header('Docker-Distribution-API-Version', 'registry/2.0');
    if (!READ_METHODS.has(request.method)) {
      setMetricsRoute(request, '/v2/(write)');
      throw new OciError('UNSUPPORTED', {
        message: 'this registry is read-only: pushing, deleting and uploading are not supported',
        reason: 'write_method',
      });
    }
    const route = parseRegistryUrl(request.url);
    setMetricsRoute(request, route ? `/v2/${route.kind}` : '/v2/(unknown)');
    if (!this.config.upstream.enabled) {
      throw new OciError('UNAVAILABLE', {
        message: `the registry is disabled: the operator must set ${this.config.upstream.missing.join(' and ')}`,
        reason: 'registry_disabled',
      });
    }
    if (!route)
      throw new OciError('NAME_UNKNOWN', { message: 'not a registry API path', reason: 'unknown_path' });

    const aborted = new AbortController();
    reply.raw.once('close', () => {
      if (!reply.raw.writableFinished) aborted.abort();
    });
    const header = (name: string) => {
      const v = request.headers[name];
      return typeof v === 'string' ? v : undefined;
    };
    const result = await this.registry.handle(route, {
      method: request.method as 'GET' | 'HEAD',
      authorization: header('authorization'),
      query: request.query as Record<string, string | undefined>,
      ifNoneMatch: header('if-none-match'),
      range: header('range'),
      signal: aborted.signal,
    });
    send(reply, result);
  }
}

function send(reply: FastifyReply, result: RegistryReply): void {
  reply.status(result.status).headers(result.headers);
  const body = result.body;
  if (body === undefined) {
    reply.send();
  } else if (body instanceof Readable) {
    // Headers go out with the first byte. A body that fails before it is answered with an error
    // instead, which must not carry this reply's headers (a 502 with a Content-Range).
    body.once('error', () => {
      if (reply.raw.headersSent) return;
      // Fastify has copied them onto the raw response already, waiting for that first byte.
      for (const name of Object.keys(result.headers)) {
        reply.removeHeader(name);
        reply.raw.removeHeader(name);
      }
    });
    reply.send(body);
  } else if (Buffer.isBuffer(body)) {
    reply.send(body);
  } else {
    reply.header('Content-Type', 'application/json; charset=utf-8').send(JSON.stringify(body));
  }
}

export function parseRegistryUrl(url: string): OciRoute | null {
  const path = url.split('?', 1)[0];
  const rest = path === '/v2' ? '' : path.slice('/v2/'.length);
  if (rest.includes('%')) throw new OciError('NAME_INVALID', { detail: { reason: 'percent-encoded path' } });
  return parseOciPath(rest);
}
