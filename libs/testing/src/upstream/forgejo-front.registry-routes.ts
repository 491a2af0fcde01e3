import { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { FrontAuth } from './forgejo-front.auth';
import {
  DIGEST_RE,
  DIST_HEADER,
  FrontContext,
  GHOST_USER_ID,
  IMAGE_RE,
  Principal,
  TAG_RE,
} from './forgejo-front.context';
import { FrontDelivery } from './forgejo-front.delivery';
import { FrontResponses } from './forgejo-front.responses';
import { FrontRequestRecord } from './forgejo-front.types';
import { FrontUpstream } from './forgejo-front.upstream';
import { paginateCatalog, paginateTags, parseN } from './forgejo-pagination';

/** The registry surface: `/v2/`, `/v2/token`, `_catalog`, manifests, blobs, tag lists and (opt-in) referrers. */
export function frontRegistryRoutes(
  ctx: FrontContext,
  responses: FrontResponses,
  auth: FrontAuth,
  up: FrontUpstream,
  delivery: FrontDelivery,
) {
  const { owners, behaviours, listedTags, requireSigninView } = ctx;
  const { text, ociError, challenge, authGroupVerify, reqPackageAccess, internalError } = responses;
  const { authenticate, mint, canRead, hasReadPackage } = auth;
  const { upstream, fetchManifest, presign, redirect } = up;
  const { deliver, preempt, streamBlob } = delivery;

  const serveManifestBuffer = (
    req: IncomingMessage,
    res: ServerResponse,
    m: { body: Buffer; mediaType: string; digest: string },
  ): void => {
    const etag = `"${m.digest}"`;
    const base = {
      ...DIST_HEADER,
      'content-type': m.mediaType,
      'docker-content-digest': m.digest,
      etag,
    };
    if (req.method === 'HEAD') {
      res.writeHead(200, { ...base, 'content-length': String(m.body.length) });
      res.end();
      return;
    }
    const full = {
      ...base,
      'accept-ranges': 'bytes',
      'cache-control': 'private, max-age=300',
      'x-content-type-options': 'nosniff',
    };
    const inm = req.headers['if-none-match'];
    if (inm && inm.split(',').some((v) => v.trim() === etag || v.trim() === '*')) {
      res.writeHead(304, { etag, 'cache-control': 'private, max-age=300' });
      res.end();
      return;
    }
    const range = /^bytes=(\d*)-(\d*)$/.exec(String(req.headers.range ?? ''));
    if (range && ctx.rangeSupport) {
      const size = m.body.length;
      let start = range[1] === '' ? size - Number(range[2]) : Number(range[1]);
      let end = range[1] === '' || range[2] === '' ? size - 1 : Math.min(Number(range[2]), size - 1);
      start = Math.max(0, start);
      if (start > end || start >= size) {
        res.writeHead(416, { 'content-range': `bytes */${size}` });
        res.end();
        return;
      }
      end = Math.max(end, start);
      res.writeHead(206, {
        ...full,
        'content-range': `bytes ${start}-${end}/${size}`,
        'content-length': String(end - start + 1),
      });
      res.end(m.body.subarray(start, end + 1));
      return;
    }
    res.writeHead(200, { ...full, 'content-length': String(m.body.length) });
    res.end(m.body);
  };

  const handleManifest = async (
    req: IncomingMessage,
    res: ServerResponse,
    name: string,
    reference: string,
  ): Promise<void> => {
    let ref: string;
    if (DIGEST_RE.test(reference)) ref = reference;
    else if (TAG_RE.test(reference)) ref = reference.toLowerCase();
    else return ociError(res, 404, 'MANIFEST_UNKNOWN');
    const m = await fetchManifest(name, ref);
    if (!m) return ociError(res, 404, 'MANIFEST_UNKNOWN');
    if (req.method === 'GET' && ctx.serveDirect)
      return redirect(res, presign('manifest', name, m.digest, m.mediaType));
    const behaviour = behaviours.get(m.digest) ?? 'normal';
    if (req.method === 'GET' && behaviour !== 'normal') {
      // A misbehaving upstream for this manifest (by tag or digest): hang, fail, trickle, cut.
      if (preempt(m.digest, res)) return;
      res.writeHead(200, {
        ...DIST_HEADER,
        'content-type': m.mediaType,
        'docker-content-digest': m.digest,
        'content-length': String(m.body.length),
      });
      return deliver(Readable.from([m.body]), res, behaviour);
    }
    serveManifestBuffer(req, res, m);
  };

  const handleBlob = async (
    req: IncomingMessage,
    res: ServerResponse,
    name: string,
    digest: string,
  ): Promise<void> => {
    if (!DIGEST_RE.test(digest)) return ociError(res, 404, 'BLOB_UNKNOWN');
    if (req.method === 'HEAD') {
      const up = await upstream(`/v2/${name}/blobs/${digest}`, 'HEAD');
      await up.body.dump();
      if (up.statusCode === 404) return ociError(res, 404, 'BLOB_UNKNOWN');
      if (up.statusCode !== 200) return internalError(res);
      res.writeHead(200, {
        ...DIST_HEADER,
        'docker-content-digest': digest,
        etag: `"${digest}"`,
        'content-length': String(up.headers['content-length'] ?? '0'),
      });
      res.end();
      return;
    }
    if (ctx.serveDirect) {
      const head = await upstream(`/v2/${name}/blobs/${digest}`, 'HEAD');
      await head.body.dump();
      if (head.statusCode === 404) return ociError(res, 404, 'BLOB_UNKNOWN');
      return redirect(res, presign('blob', name, digest, 'application/octet-stream'));
    }
    if (preempt(digest, res)) return;
    const common = {
      ...DIST_HEADER,
      'content-type': 'application/octet-stream',
      'docker-content-digest': digest,
      etag: `"${digest}"`,
    };
    await streamBlob(
      req,
      res,
      name,
      digest,
      () =>
        ctx.rangeSupport
          ? {
              ...common,
              'accept-ranges': 'bytes',
              'cache-control': 'private, max-age=300',
              'x-content-type-options': 'nosniff',
            }
          : common,
      ctx.rangeSupport,
    );
  };

  const handleTags = async (res: ServerResponse, url: URL, owner: string, image: string): Promise<void> => {
    const name = `${owner}/${image}`;
    const up = await upstream(`/v2/${name}/tags/list`, 'GET');
    if (up.statusCode === 404) {
      await up.body.dump();
      return ociError(res, 404, 'NAME_UNKNOWN');
    }
    if (up.statusCode !== 200) {
      await up.body.dump();
      return internalError(res);
    }
    const body = (await up.body.json()) as { tags?: string[] | null };
    const page = paginateTags(
      [...(body.tags ?? []), ...(listedTags.get(name) ?? [])],
      { n: parseN(url.searchParams.get('n')), last: url.searchParams.get('last') ?? undefined },
      `/v2/${name}/tags/list`,
    );
    res.writeHead(200, {
      ...DIST_HEADER,
      'content-type': 'application/json',
      ...(page.link ? { link: page.link } : {}),
    });
    res.end(JSON.stringify({ name, tags: page.items }) + '\n');
  };

  /** An OCI 1.1 referrers API (opt-in): the tag-schema index's entries plus added referrers. */
  const handleReferrers = async (res: ServerResponse, name: string, subject: string): Promise<void> => {
    if (!DIGEST_RE.test(subject)) return ociError(res, 400, 'DIGEST_INVALID');
    const index = await fetchManifest(name, `sha256-${subject.slice('sha256:'.length)}`);
    const listed = index
      ? ((JSON.parse(index.body.toString('utf8')) as { manifests?: unknown[] }).manifests ?? [])
      : [];
    const manifests = [...listed, ...(ctx.referrers.get(`${name}\u0000${subject}`) ?? [])];
    res.writeHead(200, { ...DIST_HEADER, 'content-type': 'application/vnd.oci.image.index.v1+json' });
    res.end(
      JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests }),
    );
  };

  const handleCatalog = async (res: ServerResponse, url: URL, p: Principal): Promise<void> => {
    const up = await upstream('/v2/_catalog?n=1000', 'GET');
    if (up.statusCode !== 200) {
      await up.body.dump();
      return internalError(res);
    }
    const body = (await up.body.json()) as { repositories?: string[] | null };
    const visible = (body.repositories ?? []).filter((r) => {
      const owner = owners.get(r.split('/')[0]);
      return owner !== undefined && canRead(p, owner);
    });
    const page = paginateCatalog(visible, {
      n: parseN(url.searchParams.get('n')),
      last: url.searchParams.get('last') ?? undefined,
    });
    res.writeHead(200, {
      ...DIST_HEADER,
      'content-type': 'application/json',
      ...(page.link ? { link: page.link } : {}),
    });
    res.end(JSON.stringify({ repositories: page.items }) + '\n');
  };

  const handleToken = async (req: IncomingMessage, res: ServerResponse, path: string): Promise<void> => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(404);
      res.end();
      return;
    }
    const auth = await authenticate(req.headers.authorization, path);
    let principal: Principal;
    if (auth.kind === 'error') return authGroupVerify(res);
    if (auth.kind === 'none') {
      if (requireSigninView) return challenge(res);
      principal = { userId: GHOST_USER_ID, user: 'ghost' };
    } else {
      principal = auth.principal;
    }
    const token = await mint(principal);
    res.writeHead(200, { 'content-type': 'application/json;charset=utf-8' });
    res.end(JSON.stringify({ token }) + '\n');
  };

  const route = async (
    req: IncomingMessage,
    res: ServerResponse,
    record: FrontRequestRecord,
    url: URL,
  ): Promise<void> => {
    const path = record.path;
    if (path !== '/v2' && !path.startsWith('/v2/')) return text(res, 404, 'Not found.\n');
    if (path === '/v2/token') {
      record.kind = 'token';
      return handleToken(req, res, path);
    }
    const auth = await authenticate(req.headers.authorization, path);
    if (auth.kind === 'error') return authGroupVerify(res);
    const principal = auth.kind === 'user' ? auth.principal : undefined;
    const readMethod = req.method === 'GET' || req.method === 'HEAD';
    if (path === '/v2') {
      record.kind = 'ping';
      if (!principal) return challenge(res);
      if (!readMethod) return text(res, 405, 'Method Not Allowed\n');
      res.writeHead(200, { ...DIST_HEADER, 'content-length': '0' });
      res.end();
      return;
    }
    if (path === '/v2/_catalog') {
      record.kind = 'catalog';
      if (!principal) return challenge(res);
      return handleCatalog(res, url, principal);
    }
    const rest = path.slice('/v2/'.length);
    const slash = rest.indexOf('/');
    const ownerSegment = slash < 0 ? rest : rest.slice(0, slash);
    const remainder = slash < 0 ? '' : rest.slice(slash + 1);
    let match: RegExpExecArray | null;
    let image: string | undefined;
    if ((match = /^(.+)\/manifests\/([^/]+)$/.exec(remainder))) {
      record.kind = 'manifest';
      image = match[1];
      record.reference = match[2];
    } else if ((match = /^(.+)\/blobs\/([^/]+)$/.exec(remainder))) {
      record.kind = 'blob';
      image = match[1];
      record.reference = match[2];
    } else if ((match = /^(.+)\/tags\/list$/.exec(remainder))) {
      record.kind = 'tags';
      image = match[1];
    } else if ((match = /^(.+)\/referrers\/([^/]+)$/.exec(remainder))) {
      record.kind = 'referrers';
      record.repository = `${ownerSegment.toLowerCase()}/${match[1]}`;
      record.reference = match[2];
      if (ctx.referrersApi) image = match[1];
    }
    if (image !== undefined) record.repository = `${ownerSegment.toLowerCase()}/${image}`;
    if (!principal) return challenge(res);
    const owner = owners.get(ownerSegment.toLowerCase());
    if (!owner) return text(res, 404, 'Not found.\n');
    if (principal.scopes !== undefined) {
      if (!hasReadPackage(principal.scopes)) return reqPackageAccess(res);
      if (principal.scopes.includes('public-only') && owner.private) return text(res, 403, 'reqToken\n');
    }
    if (!canRead(principal, owner)) return reqPackageAccess(res);
    if (image === undefined || !readMethod) {
      // unknown sub-routes (referrers included) fall through to Forgejo's catch-all: 404, empty body
      res.writeHead(404);
      res.end();
      return;
    }
    if (!IMAGE_RE.test(image)) return ociError(res, 400, 'NAME_INVALID');
    const name = `${owner.name.toLowerCase()}/${image}`;
    if (record.kind === 'manifest') return handleManifest(req, res, name, record.reference!);
    if (record.kind === 'blob') return handleBlob(req, res, name, record.reference!);
    if (record.kind === 'referrers') return handleReferrers(res, name, record.reference!);
    return handleTags(res, url, owner.name.toLowerCase(), image);
  };

  return route;
}
