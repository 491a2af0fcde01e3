import { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DIST_HEADER, FrontContext } from './forgejo-front.context';
import { FrontResponses } from './forgejo-front.responses';
import { BlobBehaviour } from './forgejo-front.types';
import { FrontUpstream } from './forgejo-front.upstream';

/** Blob (and manifest) bodies, with the fault injection set by `setBlobBehaviour`. */
export function frontDelivery(ctx: FrontContext, responses: FrontResponses, up: FrontUpstream) {
  const { behaviours } = ctx;
  const { ociError, internalError } = responses;
  const { upstream } = up;

  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  const deliver = async (body: Readable, res: ServerResponse, behaviour: BlobBehaviour): Promise<void> => {
    if (behaviour === 'normal') {
      await pipeline(body, res);
      return;
    }
    const stopAt = (prefix: string): number => Number(behaviour.slice(prefix.length));
    if (behaviour.startsWith('cut-after:') || behaviour.startsWith('stall-after:')) {
      const limit = stopAt(behaviour.startsWith('cut-after:') ? 'cut-after:' : 'stall-after:');
      let sent = 0;
      for await (const chunk of body as AsyncIterable<Buffer>) {
        const piece = chunk.subarray(0, Math.max(0, limit - sent));
        if (piece.length > 0) {
          res.write(piece);
          sent += piece.length;
        }
        if (sent >= limit) break;
      }
      body.destroy();
      if (behaviour.startsWith('cut-after:')) {
        // let the bytes leave before resetting the connection
        await sleep(50);
        res.socket?.resetAndDestroy();
      }
      return;
    }
    const bytesPerSecond = behaviour === 'trickle' ? 160 * 1024 : stopAt('trickle:');
    const slice = Math.max(1, Math.floor(bytesPerSecond / 10));
    // Below 10 bytes/s one byte goes out per tick and the tick grows, so `trickle:1` is 1 byte/s.
    const tickMs = Math.max(100, Math.round((1000 * slice) / bytesPerSecond));
    for await (const chunk of body as AsyncIterable<Buffer>) {
      for (let i = 0; i < chunk.length; i += slice) {
        if (res.destroyed) {
          body.destroy();
          return;
        }
        res.write(chunk.subarray(i, i + slice));
        await sleep(tickMs);
      }
    }
    res.end();
  };

  /** Handles `hang` and `fail:` before anything is sent; true when the response is taken care of. */
  const preempt = (digest: string, res: ServerResponse): boolean => {
    const b = behaviours.get(digest) ?? 'normal';
    if (b === 'hang') return true;
    if (b.startsWith('fail:')) {
      res.writeHead(Number(b.slice(5)), DIST_HEADER);
      res.end();
      return true;
    }
    return false;
  };

  const streamBlob = async (
    req: IncomingMessage,
    res: ServerResponse,
    name: string,
    digest: string,
    extraHeaders: (upstreamHeaders: Record<string, string | string[] | undefined>) => Record<string, string>,
    useRange: boolean,
  ): Promise<void> => {
    const headers: Record<string, string> = {};
    if (useRange) {
      for (const h of ['range', 'if-range', 'if-none-match'] as const) {
        const v = req.headers[h];
        if (typeof v === 'string') headers[h] = v;
      }
    }
    const up = await upstream(`/v2/${name}/blobs/${digest}`, 'GET', headers);
    if (up.statusCode === 404) {
      await up.body.dump();
      return ociError(res, 404, 'BLOB_UNKNOWN');
    }
    if (![200, 206, 304, 416].includes(up.statusCode)) {
      await up.body.dump();
      return internalError(res);
    }
    const out: Record<string, string> = extraHeaders(up.headers);
    for (const h of ['content-length', 'content-range'] as const) {
      const v = up.headers[h];
      if (typeof v === 'string') out[h] = v;
    }
    res.writeHead(up.statusCode, out);
    if (up.statusCode !== 200 && up.statusCode !== 206) {
      await up.body.dump();
      res.end();
      return;
    }
    const behaviour = behaviours.get(digest) ?? 'normal';
    res.once('close', () => up.body.destroy());
    await deliver(up.body, res, behaviour);
  };

  return { deliver, preempt, streamBlob };
}

export type FrontDelivery = ReturnType<typeof frontDelivery>;
