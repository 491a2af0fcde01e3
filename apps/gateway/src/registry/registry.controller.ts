import { Readable } from 'node:stream';
import { All, Controller, Req, Res } from '@nestjs/common';
import { AuthorisedRegistryRequest, RegistryAccess } from '@gatehouse/auth';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { RegistryPipeline } from './registry.guards';
import { RegistryReply, RegistryService } from './registry.service';

/**
 * Everything under /v2/ arrives here once the pipeline (registry.guards.ts) has parsed the
 * route, verified the token, counted the request against its limit and authorised it: the
 * handler only hands the authorised request to RegistryService and writes its reply.
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
    const aborted = new AbortController();
    reply.raw.once('close', () => {
      if (!reply.raw.writableFinished) aborted.abort();
    });
    const header = (name: string) => {
      const v = request.headers[name];
      return typeof v === 'string' ? v : undefined;
    };
    const result = await this.registry.handle(access, {
      method: request.method as 'GET' | 'HEAD',
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
