import { createHash, randomUUID } from 'node:crypto';
import { IncomingMessage, ServerResponse } from 'node:http';
import { FrontAuth } from './forgejo-front.auth';
import { FrontContext, Principal } from './forgejo-front.context';
import { FrontResponses } from './forgejo-front.responses';
import { FrontRequestRecord } from './forgejo-front.types';

/** One release asset (a Forgejo attachment) as the front stores it. */
export interface FrontAsset {
  id: number;
  uuid: string;
  name: string;
  data: Buffer;
  createdAt: string;
}

export interface FrontRelease {
  id: number;
  tag: string;
  name: string;
  draft: boolean;
  prerelease: boolean;
  createdAt: string;
  assets: FrontAsset[];
}

/** A generic package version as Forgejo's package list knows it (name and version as uploaded). */
export interface FrontPackageVersion {
  id: number;
  owner: string;
  name: string;
  version: string;
  createdAt: string;
}

/** The release and generic-package state of the front (owner/repo and owner/name keys, lower case). */
export interface FrontDownloads {
  releases: Map<string, FrontRelease[]>;
  /** `owner/name/version` → filename → bytes */
  packages: Map<string, Map<string, Buffer>>;
  /** `owner/name/version` → the version's row (its first upload fixes the name's and version's case) */
  packageVersions: Map<string, FrontPackageVersion>;
  /** Answer asset and package-file downloads with a 303 to a presigned storage URL. */
  serveDirect: boolean;
  nextId: number;
}

export function createFrontDownloads(): FrontDownloads {
  return {
    releases: new Map(),
    packages: new Map(),
    packageVersions: new Map(),
    serveDirect: false,
    nextId: 1,
  };
}

const hasScope = (p: Principal, category: 'repository' | 'package'): boolean =>
  p.scopes === undefined ||
  p.scopes.some((s) => s === 'all' || s === `read:${category}` || s === `write:${category}`);

/**
 * Forgejo's release and generic-package surfaces (reference §6 and §7): the releases API
 * (metadata only, `read:repository`), the release download web route (token or Basic, scope not
 * checked, 404 for no access, `latest` alias, Range, `ETag: "<uuid>"`, optionally a 303 to
 * storage), and generic package files (`read:package`). Returns false for paths it does not own.
 */
export function frontReleaseRoutes(
  ctx: FrontContext,
  downloads: FrontDownloads,
  responses: FrontResponses,
  auth: FrontAuth,
) {
  const { text, reqPackageAccess } = responses;
  const { principalForPat, canRead } = auth;
  const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    res.writeHead(status, { 'content-type': 'application/json;charset=utf-8', ...headers });
    res.end(JSON.stringify(body));
  };
  const apiNotFound = (res: ServerResponse) =>
    json(res, 404, { errors: null, message: 'not found', url: `${ctx.rootUrl}api/swagger` });

  /** `token <PAT>`, `Bearer <PAT>` or Basic with the PAT as password (or as username). */
  const principal = (header: string | undefined): Principal | 'none' | 'bad' => {
    if (!header) return 'none';
    const m = /^(token|bearer)\s+(\S+)$/i.exec(header);
    let pat: string | undefined;
    if (m) pat = m[2];
    else if (/^basic /i.test(header)) {
      const decoded = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      const user = colon < 0 ? decoded : decoded.slice(0, colon);
      const pass = colon < 0 ? '' : decoded.slice(colon + 1);
      pat = pass === '' || pass === 'x-oauth-basic' ? user : pass;
    }
    const p = pat === undefined ? undefined : principalForPat(pat);
    return p ?? 'bad';
  };

  const ownerVisible = (p: Principal | 'none', owner: string): boolean => {
    const o = ctx.owners.get(owner.toLowerCase());
    if (!o) return false;
    if (p === 'none') return !o.private && !ctx.requireSigninView;
    return canRead(p, o);
  };

  const releaseJson = (o: string, r: string, rel: FrontRelease) => ({
    id: rel.id,
    tag_name: rel.tag,
    target_commitish: 'main',
    name: rel.name,
    body: '',
    url: `${ctx.rootUrl}api/v1/repos/${o}/${r}/releases/${rel.id}`,
    html_url: `${ctx.rootUrl}${o}/${r}/releases/tag/${rel.tag}`,
    tarball_url: `${ctx.rootUrl}${o}/${r}/archive/${rel.tag}.tar.gz`,
    zipball_url: `${ctx.rootUrl}${o}/${r}/archive/${rel.tag}.zip`,
    draft: rel.draft,
    prerelease: rel.prerelease,
    created_at: rel.createdAt,
    published_at: rel.createdAt,
    assets: rel.assets.map((a) => ({
      id: a.id,
      name: a.name,
      size: a.data.length,
      download_count: 0,
      created_at: a.createdAt,
      uuid: a.uuid,
      browser_download_url: `${ctx.rootUrl}attachments/${a.uuid}`,
      type: 'attachment',
    })),
  });

  /** http.ServeContent: Range, ETag, Last-Modified; or a 303 to storage with serve-direct. */
  const serveFile = (
    req: IncomingMessage,
    res: ServerResponse,
    data: Buffer,
    etag: string,
    storageKey: string,
  ): void => {
    if (downloads.serveDirect && req.method === 'GET') {
      const sig = createHash('sha256')
        .update(`${ctx.presignSecret.toString('hex')}:${storageKey}`)
        .digest('hex');
      const location = `${ctx.storageUrl}/attachments/${encodeURIComponent(storageKey)}?X-Amz-Signature=${sig}`;
      res.writeHead(303, { location, 'content-type': 'text/html; charset=utf-8' });
      res.end(`<a href="${location}">See Other</a>.\n\n`);
      return;
    }
    sendBytes(req, res, data, { etag: `"${etag}"` });
  };

  /**
   * `GET /api/v1/packages/{owner}?type=&q=&page=&limit=` (reference §6): one item per version,
   * newest first (created DESC, id DESC); `q` a case-insensitive substring of the name; `limit`
   * 30 by default, 50 at most; `X-Total-Count` and a `Link` header. Needs `read:package` (403
   * JSON); an unknown owner is a 404, one the token cannot read a 403 (`reqPackageAccess`).
   */
  const packageList = (res: ServerResponse, who: Principal | 'none' | 'bad', owner: string, url: URL) => {
    if (who === 'bad')
      return json(res, 401, { message: 'user does not exist', url: `${ctx.rootUrl}api/swagger` });
    if (who !== 'none' && !hasScope(who, 'package')) {
      return json(res, 403, {
        message: 'token does not have at least one of required scope(s): [read:package]',
        url: `${ctx.rootUrl}api/swagger`,
      });
    }
    const o = ctx.owners.get(owner.toLowerCase());
    if (!o) return apiNotFound(res);
    if (!ownerVisible(who, owner)) {
      return json(res, 403, {
        message: 'user should have specific permission or be a site admin',
        url: `${ctx.rootUrl}api/swagger`,
      });
    }
    const type = url.searchParams.get('type') ?? '';
    const q = (url.searchParams.get('q') ?? '').toLowerCase();
    const limitAsked = Number(url.searchParams.get('limit') ?? '') || 30;
    const limit = Math.min(50, Math.max(1, limitAsked));
    const page = Math.max(1, Number(url.searchParams.get('page') ?? '1') || 1);
    const all = [...downloads.packageVersions.values()]
      .filter((v) => v.owner.toLowerCase() === o.name.toLowerCase())
      .filter((v) => (type === '' || type === 'generic') && v.name.toLowerCase().includes(q))
      .sort((a, b) => b.createdAt.localeCompare(a.createdAt) || b.id - a.id);
    const slice = all.slice((page - 1) * limit, page * limit);
    const last = Math.max(1, Math.ceil(all.length / limit));
    const link = (p: number, rel: string) => {
      const u = new URL(url.href);
      u.searchParams.set('page', String(p));
      u.searchParams.set('limit', String(limit));
      return `<${ctx.rootUrl}api/v1/packages/${encodeURIComponent(o.name)}?${u.searchParams}>; rel="${rel}"`;
    };
    const links = [
      ...(page < last ? [link(page + 1, 'next'), link(last, 'last')] : []),
      ...(page > 1 ? [link(1, 'first'), link(page - 1, 'prev')] : []),
    ];
    const person = { id: 1, login: o.name, full_name: '', email: '', avatar_url: '' };
    json(
      res,
      200,
      slice.map((v) => ({
        id: v.id,
        owner: person,
        repository: null,
        creator: person,
        type: 'generic',
        name: v.name,
        version: v.version,
        html_url: `${ctx.rootUrl}${o.name}/-/packages/generic/${encodeURIComponent(v.name)}/${encodeURIComponent(v.version)}`,
        created_at: v.createdAt,
      })),
      { 'x-total-count': String(all.length), ...(links.length ? { link: links.join(',') } : {}) },
    );
  };

  const routes = async (
    req: IncomingMessage,
    res: ServerResponse,
    record: FrontRequestRecord,
    url: URL,
  ): Promise<boolean> => {
    const path = record.path;
    const list = /^\/api\/v1\/repos\/([^/]+)\/([^/]+)\/releases$/.exec(path);
    const files = /^\/api\/v1\/packages\/([^/]+)\/generic\/([^/]+)\/([^/]+)\/files$/.exec(path);
    const download = /^\/([^/]+)\/([^/]+)\/releases\/download\/([^/]+)\/([^/]+)$/.exec(path);
    const pkg = /^\/api\/packages\/([^/]+)\/generic\/([^/]+)\/([^/]+)\/([^/]+)$/.exec(path);
    const versions = /^\/api\/v1\/packages\/([^/]+)$/.exec(path);
    if (!list && !files && !download && !pkg && !versions) return false;
    const who = principal(req.headers.authorization);
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      text(res, 405, 'Method Not Allowed\n');
      return true;
    }
    if (versions) {
      record.kind = 'package-versions';
      packageList(res, who, decodeURIComponent(versions[1]), url);
      return true;
    }
    if (list || files) {
      record.kind = list ? 'releases' : 'package-files';
      if (who === 'bad') {
        json(res, 401, { message: 'user does not exist', url: `${ctx.rootUrl}api/swagger` });
        return true;
      }
      const category = list ? 'repository' : 'package';
      if (who !== 'none' && !hasScope(who, category)) {
        json(res, 403, {
          message: `token does not have at least one of required scope(s): [read:${category}]`,
          url: `${ctx.rootUrl}api/swagger`,
        });
        return true;
      }
      const [, o, n] = (list ?? files)!;
      record.repository = `${o}/${n}`;
      if (!ownerVisible(who, o)) return (apiNotFound(res), true);
      if (list) {
        const rels = downloads.releases.get(`${o}/${n}`.toLowerCase());
        if (!rels) return (apiNotFound(res), true);
        const limit = Math.min(50, Math.max(1, Number(url.searchParams.get('limit') ?? '30') || 30));
        const page = Math.max(1, Number(url.searchParams.get('page') ?? '1') || 1);
        const visible = rels
          .filter((r) => !r.draft)
          .sort((a, b) => b.createdAt.localeCompare(a.createdAt) || b.id - a.id);
        const slice = visible.slice((page - 1) * limit, page * limit);
        json(
          res,
          200,
          slice.map((r) => releaseJson(o, n, r)),
          { 'x-total-count': String(visible.length) },
        );
        return true;
      }
      const version = decodeURIComponent(files![3]);
      const found = downloads.packages.get(`${o}/${n}/${version}`.toLowerCase());
      if (!found) return (apiNotFound(res), true);
      json(
        res,
        200,
        [...found].map(([name, data], i) => ({
          id: i + 1,
          Size: data.length,
          name,
          md5: createHash('md5').update(data).digest('hex'),
          sha1: createHash('sha1').update(data).digest('hex'),
          sha256: createHash('sha256').update(data).digest('hex'),
          sha512: createHash('sha512').update(data).digest('hex'),
        })),
      );
      return true;
    }
    if (download) {
      const [, o, r, encodedTag, encodedName] = download;
      // Forgejo (chi) unescapes path parameters: `v1.4.0%2Bbuild7` is the tag `v1.4.0+build7`.
      const tag = decodeURIComponent(encodedTag);
      const filename = decodeURIComponent(encodedName);
      record.kind = 'asset';
      record.repository = `${o}/${r}`;
      record.reference = `${tag}/${filename}`;
      // Web routes: a bad token is a 401, no access (or nothing there) a 404; the scope is not checked.
      if (who === 'bad') return (text(res, 401, 'Unauthorized\n'), true);
      const rels = ownerVisible(who, o) ? downloads.releases.get(`${o}/${r}`.toLowerCase()) : undefined;
      const published = (rels ?? []).filter((x) => !x.draft);
      let rel = published.find((x) => x.tag === tag);
      if (!rel && tag === 'latest') {
        rel = published
          .filter((x) => !x.prerelease)
          .sort((a, b) => b.createdAt.localeCompare(a.createdAt) || b.id - a.id)[0];
      }
      const asset = rel?.assets.find((a) => a.name === filename);
      if (!asset) return (text(res, 404, 'Not Found\n'), true);
      serveFile(req, res, asset.data, asset.uuid, `asset/${asset.uuid}`);
      return true;
    }
    const [, o, n, encodedVersion, encodedName] = pkg!;
    const version = decodeURIComponent(encodedVersion);
    const filename = decodeURIComponent(encodedName);
    record.kind = 'package-file';
    record.repository = `${o}/${n}`;
    record.reference = `${version}/${filename}`;
    if (who === 'bad') return (text(res, 401, 'Unauthorized\n'), true);
    if (who !== 'none' && !hasScope(who, 'package')) return (reqPackageAccess(res), true);
    const data = ownerVisible(who, o)
      ? downloads.packages.get(`${o}/${n}/${version}`.toLowerCase())?.get(filename)
      : undefined;
    if (!data) return (json(res, 404, { message: 'package does not exist' }), true);
    serveFile(
      req,
      res,
      data,
      createHash('sha256').update(data).digest('hex'),
      `pkg/${o}/${n}/${version}/${filename}`,
    );
    return true;
  };

  /** The storage origin's side of serve-direct for downloads: refuses any Authorization header. */
  const storage = (
    req: IncomingMessage,
    res: ServerResponse,
    record: FrontRequestRecord,
    url: URL,
  ): boolean => {
    const m = /^\/attachments\/(.+)$/.exec(record.path);
    if (!m) return false;
    const key = decodeURIComponent(m[1]);
    const sig = createHash('sha256')
      .update(`${ctx.presignSecret.toString('hex')}:${key}`)
      .digest('hex');
    if (req.headers.authorization !== undefined || url.searchParams.get('X-Amz-Signature') !== sig) {
      res.writeHead(403, { 'content-type': 'application/xml' });
      res.end('<Error><Code>AccessDenied</Code></Error>');
      return true;
    }
    const data = findStored(downloads, key);
    if (!data) {
      res.writeHead(404, { 'content-type': 'application/xml' });
      res.end('<Error><Code>NoSuchKey</Code></Error>');
      return true;
    }
    record.kind = key.startsWith('asset/') ? 'asset' : 'package-file';
    record.reference = key;
    sendBytes(req, res, data, { etag: `"${createHash('md5').update(data).digest('hex')}"` });
    return true;
  };

  return { routes, storage };
}

function findStored(downloads: FrontDownloads, key: string): Buffer | undefined {
  if (key.startsWith('asset/')) {
    const uuid = key.slice(6);
    for (const rels of downloads.releases.values())
      for (const r of rels) for (const a of r.assets) if (a.uuid === uuid) return a.data;
    return undefined;
  }
  const m = /^pkg\/([^/]+)\/([^/]+)\/([^/]+)\/(.+)$/.exec(key);
  return m ? downloads.packages.get(`${m[1]}/${m[2]}/${m[3]}`.toLowerCase())?.get(m[4]) : undefined;
}

/** Go's http.ServeContent for a byte buffer: one `bytes=a-b` range, 416 past the end. */
function sendBytes(
  req: IncomingMessage,
  res: ServerResponse,
  data: Buffer,
  extra: Record<string, string>,
): void {
  const size = data.length;
  const base = { 'content-type': 'application/octet-stream', 'accept-ranges': 'bytes', ...extra };
  const range = /^bytes=(\d*)-(\d*)$/.exec(String(req.headers.range ?? ''));
  if (range && (range[1] !== '' || range[2] !== '')) {
    let start = range[1] === '' ? size - Number(range[2]) : Number(range[1]);
    const end = range[1] === '' || range[2] === '' ? size - 1 : Math.min(Number(range[2]), size - 1);
    start = Math.max(0, start);
    if (start >= size || start > end) {
      res.writeHead(416, { 'content-range': `bytes */${size}` });
      res.end();
      return;
    }
    res.writeHead(206, {
      ...base,
      'content-range': `bytes ${start}-${end}/${size}`,
      'content-length': String(end - start + 1),
    });
    res.end(req.method === 'HEAD' ? undefined : data.subarray(start, end + 1));
    return;
  }
  res.writeHead(200, { ...base, 'content-length': String(size) });
  res.end(req.method === 'HEAD' ? undefined : data);
}

/** Uploads a generic package file; the version's first upload fixes its case and time. */
export function addFrontPackageFile(
  downloads: FrontDownloads,
  packageName: string,
  version: string,
  filename: string,
  data: Buffer,
  createdAt?: Date,
): void {
  const key = `${packageName}/${version}`.toLowerCase();
  const files = downloads.packages.get(key) ?? new Map<string, Buffer>();
  files.set(filename, data);
  downloads.packages.set(key, files);
  if (downloads.packageVersions.has(key)) return;
  const [owner, name] = packageName.split('/');
  const at = createdAt ?? new Date(Date.now() + downloads.nextId);
  downloads.packageVersions.set(key, {
    id: downloads.nextId++,
    owner,
    name,
    version,
    createdAt: at.toISOString(),
  });
}

/** Adds a release with assets (control surface of the front). */
export function addFrontRelease(
  downloads: FrontDownloads,
  repository: string,
  release: {
    tag: string;
    assets: Record<string, Buffer>;
    draft?: boolean;
    prerelease?: boolean;
    createdAt?: Date;
  },
): void {
  const key = repository.toLowerCase();
  const list = downloads.releases.get(key) ?? [];
  const createdAt = (release.createdAt ?? new Date(Date.now() + list.length)).toISOString();
  list.push({
    id: downloads.nextId++,
    tag: release.tag,
    name: release.tag,
    draft: release.draft ?? false,
    prerelease: release.prerelease ?? false,
    createdAt,
    assets: Object.entries(release.assets).map(([name, data]) => ({
      id: downloads.nextId++,
      uuid: randomUUID(),
      name,
      data,
      createdAt,
    })),
  });
  downloads.releases.set(key, list);
}
