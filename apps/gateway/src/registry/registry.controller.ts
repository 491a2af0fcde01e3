import { All, Controller, Req, Res } from '@nestjs/common';
import { GatewayConfig } from '@gatehouse/config';
import { OciError, OciRoute, parseOciPath } from '@gatehouse/oci';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { setMetricsRoute } from '../http/request-hooks';

const READ_METHODS = new Set(['GET', 'HEAD']);

/**
 * Everything under /v2/ arrives here and is parsed once by the spec grammar (names nest, so
 * no per-route patterns). The raw URL is parsed, not Fastify's decoded params: names, tags and
 * digests never need percent-encoding, so an encoded byte is refused rather than decoded into
 * a separator.
 */
@Controller()
export class RegistryController {
  constructor(private readonly config: GatewayConfig) {}

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
    throw new OciError('UNAVAILABLE', { reason: 'registry_not_wired' });
  }
}

export function parseRegistryUrl(url: string): OciRoute | null {
  const path = url.split('?', 1)[0];
  const rest = path === '/v2' ? '' : path.slice('/v2/'.length);
  if (rest.includes('%')) throw new OciError('NAME_INVALID', { detail: { reason: 'percent-encoded path' } });
  return parseOciPath(rest);
}
