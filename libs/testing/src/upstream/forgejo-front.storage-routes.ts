import { timingSafeEqual } from 'node:crypto';
import { IncomingMessage, ServerResponse } from 'node:http';
import { FrontContext } from './forgejo-front.context';
import { FrontDelivery } from './forgejo-front.delivery';
import { FrontRequestRecord } from './forgejo-front.types';
import { FrontUpstream } from './forgejo-front.upstream';

// The "S3" side of serve-direct: another origin, signature in the query, and like S3 it
// refuses a request that also carries an Authorization header.
export function frontStorageRoutes(ctx: FrontContext, up: FrontUpstream, delivery: FrontDelivery) {
  const { log } = ctx;
  const { upstream, fetchManifest, sign } = up;
  const { preempt, streamBlob } = delivery;
  return (req: IncomingMessage, res: ServerResponse, record: FrontRequestRecord, url: URL): void => {
    const s3Error = (status: number, code: string, message: string): void => {
      res.writeHead(status, { 'content-type': 'application/xml' });
      res.end(
        `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message></Error>`,
      );
    };
    const handle = async (): Promise<void> => {
      const m = /^\/packages\/(blob|manifest)\/([^/]+)\/(sha256:[a-f0-9]{64})$/.exec(record.path);
      if (!m) return s3Error(404, 'NoSuchKey', 'The specified key does not exist.');
      const [, kind, encodedName, digest] = m;
      const name = decodeURIComponent(encodedName);
      record.kind = kind === 'blob' ? 'blob' : 'manifest';
      record.repository = name;
      record.reference = digest;
      if (req.headers.authorization !== undefined) {
        return s3Error(
          400,
          'InvalidArgument',
          'Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified',
        );
      }
      const q = url.searchParams;
      const date = q.get('X-Amz-Date') ?? '';
      const expires = q.get('X-Amz-Expires') ?? '';
      const given = Buffer.from(q.get('X-Amz-Signature') ?? '');
      const wanted = Buffer.from(sign(kind, name, digest, date, expires));
      if (given.length !== wanted.length || !timingSafeEqual(given, wanted)) {
        return s3Error(
          403,
          'SignatureDoesNotMatch',
          'The request signature we calculated does not match the signature you provided.',
        );
      }
      const d = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(date);
      const signedAt = d ? Date.UTC(+d[1], +d[2] - 1, +d[3], +d[4], +d[5], +d[6]) : 0;
      if (Date.now() > signedAt + Number(expires) * 1000)
        return s3Error(403, 'AccessDenied', 'Request has expired');
      if (req.method !== 'GET' && req.method !== 'HEAD')
        return s3Error(405, 'MethodNotAllowed', 'The specified method is not allowed against this resource.');
      const contentType = q.get('response-content-type') ?? 'application/octet-stream';
      const disposition = q.get('response-content-disposition');
      if (kind === 'manifest') {
        const found = await fetchManifest(name, digest);
        if (!found) return s3Error(404, 'NoSuchKey', 'The specified key does not exist.');
        res.writeHead(200, {
          'content-type': contentType,
          'content-length': String(found.body.length),
          'accept-ranges': 'bytes',
          ...(disposition ? { 'content-disposition': disposition } : {}),
        });
        res.end(req.method === 'HEAD' ? undefined : found.body);
        return;
      }
      if (req.method === 'GET' && preempt(digest, res)) return;
      const headers = (): Record<string, string> => ({
        'content-type': contentType,
        'accept-ranges': 'bytes',
        etag: `"${digest.slice(7, 39)}"`,
        ...(disposition ? { 'content-disposition': disposition } : {}),
      });
      if (req.method === 'HEAD') {
        const up = await upstream(`/v2/${name}/blobs/${digest}`, 'HEAD');
        await up.body.dump();
        if (up.statusCode !== 200) return s3Error(404, 'NoSuchKey', 'The specified key does not exist.');
        res.writeHead(200, { ...headers(), 'content-length': String(up.headers['content-length'] ?? '0') });
        res.end();
        return;
      }
      await streamBlob(req, res, name, digest, headers, true);
    };
    handle().catch((err: unknown) => {
      log(`storage error on ${record.path}: ${(err as Error).stack ?? String(err)}`);
      if (!res.headersSent) s3Error(500, 'InternalError', 'We encountered an internal error.');
      else res.destroy();
    });
  };
}
