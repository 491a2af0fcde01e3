import { All, Controller, Req, Res } from '@nestjs/common';
import { AuthorisedRegistryRequest, RegistryAccess } from '@gatehouse/auth';
import { RegistryService } from '@gatehouse/registry';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { abortSignalOf, writeReply } from '../http/reply-writer';
import { RegistryPipeline } from './registry.guards';

/**
 * Everything under /v2/ arrives here once the pipeline (registry.guards.ts) has parsed the
 * route, verified the token, counted the request against its limit and authorised it: the
 * handler only hands the authorised request to RegistryService (libs/registry) and writes its
 * reply.
 */
@Controller()
@RegistryPipeline()
export class RegistryController {
  constructor(private readonly registry: RegistryService) {}

  @All(['v2', 'v2/*'])
  async handle(
    @AuthorisedRegistryRequest() access: RegistryAccess,
    @Req() request: FastifyRequest,
    @Res() reply: FastifyReply,
  ): Promise<void> {
    const header = (name: string) => {
      const v = request.headers[name];
      return typeof v === 'string' ? v : undefined;
    };
    const result = await this.registry.handle(access, {
      method: request.method as 'GET' | 'HEAD',
      query: request.query as Record<string, string | undefined>,
      ifNoneMatch: header('if-none-match'),
      range: header('range'),
      signal: abortSignalOf(reply),
    });
    writeReply(reply, result);
  }
}
