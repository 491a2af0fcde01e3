import { createHash, createHmac } from 'node:crypto';
import { ServerResponse } from 'node:http';
import { request } from 'undici';
import { FrontContext } from './forgejo-front.context';
import { ALL_MANIFEST_MEDIA_TYPES } from './image-builder';

/** The real registry behind the front, and the presigned "S3" URLs of serve-direct. */
export function frontUpstream(ctx: FrontContext) {
  const { agent, upstreamAuth, upstreamBase, presignSecret } = ctx;

  const upstream = (path: string, method: 'GET' | 'HEAD', headers: Record<string, string> = {}) =>
    request(`${upstreamBase}${path}`, {
      method,
      dispatcher: agent,
      headers: { ...headers, ...(upstreamAuth ? { authorization: upstreamAuth } : {}) },
    });

  const fetchManifest = async (
    name: string,
    reference: string,
  ): Promise<{ body: Buffer; mediaType: string; digest: string } | undefined> => {
    const res = await upstream(`/v2/${name}/manifests/${reference}`, 'GET', {
      accept: ALL_MANIFEST_MEDIA_TYPES.join(', '),
    });
    if (res.statusCode === 404) {
      await res.body.dump();
      return undefined;
    }
    if (res.statusCode !== 200) {
      await res.body.dump();
      throw new Error(`upstream manifest ${name}:${reference} answered ${res.statusCode}`);
    }
    const body = Buffer.from(await res.body.arrayBuffer());
    const digest = String(
      res.headers['docker-content-digest'] ?? 'sha256:' + createHash('sha256').update(body).digest('hex'),
    );
    return { body, mediaType: String(res.headers['content-type']), digest };
  };

  // ---- presigned storage URLs ---------------------------------------------------------

  const sign = (kind: string, name: string, digest: string, date: string, expires: string): string =>
    createHmac('sha256', presignSecret)
      .update(`${kind}\n${name}\n${digest}\n${date}\n${expires}`)
      .digest('hex');

  const presign = (kind: 'blob' | 'manifest', name: string, digest: string, contentType: string): string => {
    const date = new Date()
      .toISOString()
      .replace(/[-:]/g, '')
      .replace(/\.\d+Z$/, 'Z');
    const expires = String(ctx.presignTtl);
    const q = new URLSearchParams({
      'X-Amz-Algorithm': 'AWS4-HMAC-SHA256',
      'X-Amz-Credential': 'forgejo/20240101/us-east-1/s3/aws4_request',
      'X-Amz-Date': date,
      'X-Amz-Expires': expires,
      'X-Amz-SignedHeaders': 'host',
      'X-Amz-Signature': sign(kind, name, digest, date, expires),
      'response-content-disposition': `attachment; filename="${digest.replace(':', '_')}"`,
      'response-content-type': contentType,
    });
    return `${ctx.storageUrl}/packages/${kind}/${encodeURIComponent(name)}/${digest}?${q.toString()}`;
  };

  const redirect = (res: ServerResponse, location: string): void => {
    // Go's http.Redirect: text/html body, and since v12 no digest or length headers (§3).
    // Written as a chunk so Node does not add the Content-Length Forgejo no longer sends.
    res.writeHead(307, { location, 'content-type': 'text/html; charset=utf-8' });
    res.write(
      `<a href="${location.replace(/&/g, '&amp;').replace(/"/g, '&#34;')}">Temporary Redirect</a>.\n\n`,
    );
    res.end();
  };

  return { upstream, fetchManifest, sign, presign, redirect };
}

export type FrontUpstream = ReturnType<typeof frontUpstream>;
