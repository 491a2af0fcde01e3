import { Readable } from 'node:stream';
import type { FastifyReply } from 'fastify';

/** What a surface's decisions answer: a status, headers and a body the writer knows how to send. */
export interface SurfaceReply {
  status: number;
  /** A list is sent as one header line per item (`Warning`). */
  headers: Record<string, string | string[]>;
  /** A JSON object, bytes, or a stream; absent for HEAD, 304 and offloaded blobs. */
  body?: object | Buffer | Readable;
}

/**
 * The one place a controller writes a decided reply (registry, downloads): status and headers,
 * then the body. Headers go out with a stream's first byte; a stream that fails before it is
 * answered with an error by the exception filter instead, which must not carry this reply's
 * headers (a 502 with a Content-Range), so they are taken back. The audit of the body is the
 * decision's (it wraps the stream before handing it over); the abort signal comes from
 * `abortSignalOf`.
 */
export function writeReply(reply: FastifyReply, result: SurfaceReply): void {
  reply.status(result.status).headers(result.headers);
  const body = result.body;
  if (body === undefined) return void reply.send();
  if (body instanceof Readable) {
    body.once('error', () => {
      if (reply.raw.headersSent) return;
      // Fastify has copied them onto the raw response already, waiting for that first byte.
      for (const name of Object.keys(result.headers)) {
        reply.removeHeader(name);
        reply.raw.removeHeader(name);
      }
    });
    return void reply.send(body);
  }
  if (Buffer.isBuffer(body)) return void reply.send(body);
  reply.header('Content-Type', 'application/json; charset=utf-8').send(JSON.stringify(body));
}

/** Aborted when the client goes away before the reply is finished (stops fills it alone waits on). */
export function abortSignalOf(reply: FastifyReply): AbortSignal {
  const aborted = new AbortController();
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) aborted.abort();
  });
  return aborted.signal;
}
