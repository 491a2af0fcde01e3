import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import { Socket } from 'node:net';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { jwtVerify, SignJWT } from 'jose';
import { Agent, request } from 'undici';
import { ALL_MANIFEST_MEDIA_TYPES } from './image-builder';
import { paginateCatalog, paginateTags, parseN } from './forgejo-pagination';
import type { BasicCredentials } from './registry-process';

/**
 * An HTTP front that answers like Forgejo's container registry (auth, errors, quirks) while
 * serving real content proxied from a CNCF distribution registry. Facts and section numbers
 * refer to the Forgejo registry reference in the shared docs.
 */

export interface FrontToken {
  /** Forgejo scope names: 'read:package', 'write:package', 'all', 'public-only', ... */
  scopes: string[];
  revoked?: boolean;
  /** Forgejo user owning the PAT; defaults to `gatehouse-service` */
  user?: string;
}

export type BlobBehaviour =
  | 'normal'
  /** headers and no body bytes, ever */
  | 'hang'
  /** body at ~160 KiB/s, or `trickle:<bytes per second>` */
  | 'trickle'
  | `trickle:${number}`
  /** announce the full length, send N bytes, then reset the connection */
  | `cut-after:${number}`
  /** send N bytes, then keep the connection open without sending more */
  | `stall-after:${number}`
  /** answer with this status and an empty body */
  | `fail:${number}`;

export interface ForgejoFrontOptions {
  /** the registry that holds the content, e.g. `RegistryProcess.url` */
  upstreamUrl: string;
  upstreamCreds?: BasicCredentials;
  /** Forgejo ROOT_URL ending in `/`; defaults to the front's own `http://127.0.0.1:<port>/` */
  rootUrl?: string;
  tokens?: Record<string, FrontToken>;
  /** owners (users or organisations) that exist; anything else is 404 `Not found.` */
  knownOwners: string[];
  privateOwners?: string[];
  /** owners each Forgejo user may read; a user missing here reads every known owner */
  userOwners?: Record<string, string[]>;
  /** answer blob and manifest GETs with a 307 to a presigned "S3" URL on another origin */
  serveDirect?: boolean;
  /** false reproduces v11 LTS: Range ignored, 200 with the full body */
  rangeSupport?: boolean;
  /** REQUIRE_SIGNIN_VIEW; when false anonymous users get a ghost token for public owners */
  requireSigninView?: boolean;
  jwtTtlSeconds?: number;
  presignTtlSeconds?: number;
  /** host name put in presigned URLs; a name other than the front's makes Go clients drop Authorization */
  storageHost?: string;
  log?: (line: string) => void;
}

export type FrontRequestKind = 'ping' | 'token' | 'catalog' | 'manifest' | 'blob' | 'tags' | 'other';

export interface FrontRequestRecord {
  server: 'front' | 'storage';
  method: string;
  /** path without the query */
  path: string;
  query: string;
  kind: FrontRequestKind;
  /** owner/image for image routes */
  repository?: string;
  /** tag or digest for manifest and blob routes */
  reference?: string;
  auth: 'none' | 'basic' | 'bearer' | 'other';
  /** 0 while the response has not finished (or never did) */
  status: number;
  at: number;
}

export interface ForgejoFront {
  /** `http://127.0.0.1:<port>` without a trailing slash */
  readonly url: string;
  readonly hostPort: string;
  readonly port: number;
  readonly rootUrl: string;
  readonly storageUrl: string;
  readonly requests: FrontRequestRecord[];
  countRequests(predicate?: (r: FrontRequestRecord) => boolean): number;
  resetCounts(): void;
  addToken(pat: string, token: FrontToken): void;
  revokeToken(pat: string): void;
  setTokenScopes(pat: string, scopes: string[]): void;
  addOwner(name: string, options?: { private?: boolean }): void;
  setOwnerPrivate(name: string, isPrivate: boolean): void;
  /** rotate the signing secret: every JWT issued so far becomes invalid */
  invalidateJwts(): void;
  setJwtTtl(seconds: number): void;
  /** what GET /v2/token would return for this PAT */
  mintJwt(pat: string): Promise<string>;
  /** How the blob, or the manifest (GET by tag or digest), with this digest is served. */
  setBlobBehaviour(digest: string, behaviour: BlobBehaviour): void;
  setServeDirect(enabled: boolean): void;
  setRangeSupport(enabled: boolean): void;
  setPresignTtl(seconds: number): void;
  stop(): Promise<void>;
}

const DIST_HEADER = { 'docker-distribution-api-version': 'registry/2.0' };
const PAT_RE = /^[a-f0-9]{40}$/;
const DIGEST_RE = /^sha256:[a-f0-9]{64}$/;
const TAG_RE = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;
const IMAGE_RE = /^[a-z0-9]+([._-][a-z0-9]+)*(\/[a-z0-9]+([._-][a-z0-9]+)*)*$/;
const GHOST_USER_ID = -1;

/** A 40-hex PAT, derived from a label when given so tests can print stable values. */
export function generatePat(label?: string): string {
  return label === undefined
    ? randomBytes(20).toString('hex')
    : createHash('sha256').update(`pat:${label}`).digest('hex').slice(0, 40);
}

interface Principal {
  userId: number;
  user: string;
  /** PAT scopes; undefined for a JWT with an empty scope (no scope check applies) */
  scopes?: string[];
}

type AuthResult = { kind: 'none' } | { kind: 'error' } | { kind: 'user'; principal: Principal };

export async function startForgejoFront(options: ForgejoFrontOptions): Promise<ForgejoFront> {
  const log = options.log ?? (() => undefined);
  const tokens = new Map<string, FrontToken>(Object.entries(options.tokens ?? {}));
  const owners = new Map<string, { name: string; private: boolean }>();
  const privateSet = new Set((options.privateOwners ?? []).map((o) => o.toLowerCase()));
  for (const o of options.knownOwners)
    owners.set(o.toLowerCase(), { name: o, private: privateSet.has(o.toLowerCase()) });
  const userIds = new Map<string, number>();
  const userNames = new Map<number, string>();
  const userId = (name: string): number => {
    let id = userIds.get(name);
    if (id === undefined) {
      id = userIds.size + 1;
      userIds.set(name, id);
      userNames.set(id, name);
    }
    return id;
  };
  let jwtSecret = randomBytes(32);
  const presignSecret = randomBytes(32);
  let jwtTtl = options.jwtTtlSeconds ?? 24 * 3600;
  let presignTtl = options.presignTtlSeconds ?? 300;
  let serveDirect = options.serveDirect ?? false;
  let rangeSupport = options.rangeSupport ?? true;
  const requireSigninView = options.requireSigninView ?? true;
  const behaviours = new Map<string, BlobBehaviour>();
  const requests: FrontRequestRecord[] = [];
  const agent = new Agent({ keepAliveTimeout: 2000, connections: 32 });
  const upstreamAuth = options.upstreamCreds
    ? 'Basic ' +
      Buffer.from(`${options.upstreamCreds.username}:${options.upstreamCreds.password}`).toString('base64')
    : undefined;
  const upstreamBase = options.upstreamUrl.replace(/\/+$/, '');
  const storageHost = options.storageHost ?? 'localhost';

  let rootUrl = options.rootUrl ?? '';
  let storageUrl = '';

  // ---- responses ----------------------------------------------------------------------

  const text = (
    res: ServerResponse,
    status: number,
    body: string,
    headers: Record<string, string> = {},
  ): void => {
    res.writeHead(status, {
      'content-type': 'text/plain; charset=utf-8',
      'x-content-type-options': 'nosniff',
      ...headers,
    });
    res.end(body);
  };
  const ociError = (
    res: ServerResponse,
    status: number,
    code: string,
    headers: Record<string, string> = {},
  ): void => {
    res.writeHead(status, { ...DIST_HEADER, 'content-type': 'application/json', ...headers });
    res.end(JSON.stringify({ errors: [{ code, message: '' }] }) + '\n');
  };
  const challenge = (res: ServerResponse): void =>
    ociError(res, 401, 'UNAUTHORIZED', {
      'www-authenticate': `Bearer realm="${rootUrl}v2/token",service="container_registry",scope="*"`,
    });
  const authGroupVerify = (res: ServerResponse): void => text(res, 401, 'authGroup.Verify\n');
  const reqPackageAccess = (res: ServerResponse): void =>
    text(res, 401, 'reqPackageAccess\n', { 'www-authenticate': 'Basic realm="Gitea Package API"' });
  const internalError = (res: ServerResponse): void => {
    res.writeHead(500, DIST_HEADER);
    res.end();
  };

  // ---- auth ---------------------------------------------------------------------------

  const principalForPat = (pat: string): Principal | undefined => {
    if (!PAT_RE.test(pat)) return undefined;
    const t = tokens.get(pat);
    if (!t || t.revoked) return undefined;
    const user = t.user ?? 'gatehouse-service';
    return { userId: userId(user), user, scopes: [...t.scopes] };
  };

  const mint = async (p: Principal): Promise<string> => {
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({ UserID: p.userId, Scope: (p.scopes ?? []).join(',') })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setNotBefore(now)
      .setExpirationTime(now + jwtTtl)
      .sign(jwtSecret);
  };

  const principalForJwt = async (jwt: string): Promise<Principal | undefined> => {
    try {
      const { payload } = await jwtVerify(jwt, jwtSecret, { algorithms: ['HS256'] });
      const id = Number(payload.UserID);
      const scope = typeof payload.Scope === 'string' ? payload.Scope : '';
      const user = id === GHOST_USER_ID ? 'ghost' : userNames.get(id);
      if (user === undefined) return undefined;
      return { userId: id, user, scopes: scope === '' ? undefined : scope.split(',') };
    } catch {
      return undefined;
    }
  };

  const basicSecret = (header: string): string | undefined => {
    try {
      const decoded = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      const user = colon < 0 ? decoded : decoded.slice(0, colon);
      const pass = colon < 0 ? '' : decoded.slice(colon + 1);
      // Forgejo: an empty password (or x-oauth-basic) means the username is the token.
      return pass === '' || pass === 'x-oauth-basic' ? user : pass;
    } catch {
      return undefined;
    }
  };

  /** auth.Basic (only on paths under /v2/, so not on the ping) then container.Auth. */
  const authenticate = async (header: string | undefined, path: string): Promise<AuthResult> => {
    if (!header) return { kind: 'none' };
    if (/^basic /i.test(header) && path.startsWith('/v2/')) {
      const secret = basicSecret(header);
      const p = secret === undefined ? undefined : principalForPat(secret);
      return p ? { kind: 'user', principal: p } : { kind: 'error' };
    }
    const space = header.indexOf(' ');
    if (space < 0) return { kind: 'none' };
    const p = await principalForJwt(header.slice(space + 1).trim());
    return p ? { kind: 'user', principal: p } : { kind: 'error' };
  };

  const authKind = (header: string | undefined): FrontRequestRecord['auth'] => {
    if (!header) return 'none';
    if (/^basic /i.test(header)) return 'basic';
    if (/^bearer /i.test(header)) return 'bearer';
    return 'other';
  };

  const canRead = (p: Principal, owner: { name: string; private: boolean }): boolean => {
    if (p.userId === GHOST_USER_ID) return !owner.private;
    const allowed = options.userOwners?.[p.user];
    return allowed === undefined || allowed.some((o) => o.toLowerCase() === owner.name.toLowerCase());
  };

  const hasReadPackage = (scopes: string[]): boolean =>
    scopes.some((s) => s === 'all' || s === 'read:package' || s === 'write:package');

  // ---- upstream -----------------------------------------------------------------------

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
    const expires = String(presignTtl);
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
    return `${storageUrl}/packages/${kind}/${encodeURIComponent(name)}/${digest}?${q.toString()}`;
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

  // ---- body delivery with fault injection ---------------------------------------------

  const openSockets = new Set<Socket>();
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

  // ---- route handlers -----------------------------------------------------------------

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
    if (range && rangeSupport) {
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
    if (req.method === 'GET' && serveDirect)
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
    if (serveDirect) {
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
        rangeSupport
          ? {
              ...common,
              'accept-ranges': 'bytes',
              'cache-control': 'private, max-age=300',
              'x-content-type-options': 'nosniff',
            }
          : common,
      rangeSupport,
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
      body.tags ?? [],
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
    return handleTags(res, url, owner.name.toLowerCase(), image);
  };

  const track = (server: Server): void => {
    server.on('connection', (socket: Socket) => {
      openSockets.add(socket);
      socket.once('close', () => openSockets.delete(socket));
    });
  };

  const newRecord = (
    server: FrontRequestRecord['server'],
    req: IncomingMessage,
  ): { record: FrontRequestRecord; url: URL } => {
    const url = new URL(req.url ?? '/', 'http://front.invalid');
    let path = url.pathname;
    while (path.length > 1 && path.endsWith('/')) path = path.slice(0, -1);
    const record: FrontRequestRecord = {
      server,
      method: req.method ?? 'GET',
      path,
      query: url.search,
      kind: 'other',
      auth: authKind(req.headers.authorization),
      status: 0,
      at: Date.now(),
    };
    requests.push(record);
    return { record, url };
  };

  const finish = (res: ServerResponse, record: FrontRequestRecord): void => {
    res.once('finish', () => {
      record.status = res.statusCode;
      log(`${record.server} ${record.method} ${record.path}${record.query} -> ${res.statusCode}`);
    });
    res.once('close', () => {
      if (record.status === 0 && res.headersSent) record.status = res.statusCode;
    });
  };

  const front = createServer((req, res) => {
    const { record, url } = newRecord('front', req);
    finish(res, record);
    route(req, res, record, url).catch((err: unknown) => {
      log(`front error on ${record.path}: ${(err as Error).stack ?? String(err)}`);
      if (!res.headersSent) internalError(res);
      else res.destroy();
    });
  });

  // The "S3" side of serve-direct: another origin, signature in the query, and like S3 it
  // refuses a request that also carries an Authorization header.
  const storage = createServer((req, res) => {
    const { record, url } = newRecord('storage', req);
    finish(res, record);
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
  });

  track(front);
  track(storage);
  const listen = (server: Server): Promise<number> =>
    new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        const a = server.address();
        if (a === null || typeof a === 'string') reject(new Error('no port'));
        else resolve(a.port);
      });
    });
  const port = await listen(front);
  const storagePort = await listen(storage);
  if (!rootUrl) rootUrl = `http://127.0.0.1:${port}/`;
  if (!rootUrl.endsWith('/')) rootUrl += '/';
  storageUrl = `http://${storageHost}:${storagePort}`;

  const close = (server: Server): Promise<void> => new Promise((resolve) => server.close(() => resolve()));

  return {
    url: `http://127.0.0.1:${port}`,
    hostPort: `127.0.0.1:${port}`,
    port,
    rootUrl,
    storageUrl,
    requests,
    countRequests: (predicate) => (predicate ? requests.filter(predicate).length : requests.length),
    resetCounts: () => {
      requests.length = 0;
    },
    addToken: (pat, token) => {
      if (!PAT_RE.test(pat)) throw new Error(`a Forgejo PAT is 40 lowercase hex characters, got ${pat}`);
      tokens.set(pat, { ...token, scopes: [...token.scopes] });
    },
    revokeToken: (pat) => {
      const t = tokens.get(pat);
      if (t) t.revoked = true;
    },
    setTokenScopes: (pat, scopes) => {
      const t = tokens.get(pat);
      if (!t) throw new Error('unknown PAT');
      t.scopes = [...scopes];
    },
    addOwner: (name, o) => {
      owners.set(name.toLowerCase(), { name, private: o?.private ?? false });
    },
    setOwnerPrivate: (name, isPrivate) => {
      const o = owners.get(name.toLowerCase());
      if (!o) throw new Error(`unknown owner ${name}`);
      o.private = isPrivate;
    },
    invalidateJwts: () => {
      jwtSecret = randomBytes(32);
    },
    setJwtTtl: (seconds) => {
      jwtTtl = seconds;
    },
    mintJwt: async (pat) => {
      const p = principalForPat(pat);
      if (!p) throw new Error('unknown or revoked PAT');
      return mint(p);
    },
    setBlobBehaviour: (digest, behaviour) => {
      if (behaviour === 'normal') behaviours.delete(digest);
      else behaviours.set(digest, behaviour);
    },
    setServeDirect: (enabled) => {
      serveDirect = enabled;
    },
    setRangeSupport: (enabled) => {
      rangeSupport = enabled;
    },
    setPresignTtl: (seconds) => {
      presignTtl = seconds;
    },
    async stop() {
      const closing = [close(front), close(storage)];
      for (const s of openSockets) s.destroy();
      await Promise.all(closing);
      await agent.destroy();
    },
  };
}
