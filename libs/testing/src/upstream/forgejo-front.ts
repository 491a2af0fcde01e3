import { randomBytes } from 'node:crypto';
import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import { Socket } from 'node:net';
import { frontAuth } from './forgejo-front.auth';
import { createFrontContext, PAT_RE } from './forgejo-front.context';
import { frontDelivery } from './forgejo-front.delivery';
import { frontRegistryRoutes } from './forgejo-front.registry-routes';
import {
  addFrontPackageFile,
  addFrontRelease,
  createFrontDownloads,
  frontReleaseRoutes,
} from './forgejo-front.release-routes';
import { frontResponses } from './forgejo-front.responses';
import { frontStorageRoutes } from './forgejo-front.storage-routes';
import { ForgejoFront, ForgejoFrontOptions, FrontRequestRecord } from './forgejo-front.types';
import { frontUpstream } from './forgejo-front.upstream';

export * from './forgejo-front.types';
export { generatePat } from './forgejo-front.context';

/**
 * An HTTP front that answers like Forgejo's container registry (auth, errors, quirks) while
 * serving real content proxied from a CNCF distribution registry. Facts and section numbers
 * refer to the Forgejo registry reference in the shared docs.
 *
 * One route table per surface, each in its own file: forgejo-front.registry-routes.ts (the
 * registry: ping, token, catalog, manifests, blobs, tags), forgejo-front.release-routes.ts
 * (the releases API, release downloads and generic package files, with their storage side) and
 * forgejo-front.storage-routes.ts (the presigned "S3" origin of serve-direct), over shared state (forgejo-front.context.ts),
 * Forgejo's answers (.responses), its auth (.auth), the real registry behind it (.upstream) and
 * body delivery with fault injection (.delivery).
 */
export async function startForgejoFront(options: ForgejoFrontOptions): Promise<ForgejoFront> {
  const ctx = createFrontContext(options);
  const { log, tokens, owners, behaviours, requests, agent, openSockets, storageHost } = ctx;
  const responses = frontResponses(ctx);
  const auth = frontAuth(ctx);
  const up = frontUpstream(ctx);
  const delivery = frontDelivery(ctx, responses, up);
  const route = frontRegistryRoutes(ctx, responses, auth, up, delivery);
  const storageRoute = frontStorageRoutes(ctx, up, delivery);
  const downloads = createFrontDownloads();
  const releaseRoutes = frontReleaseRoutes(ctx, downloads, responses, auth);
  const { authKind, principalForPat, mint } = auth;
  const { internalError } = responses;

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
    releaseRoutes
      .routes(req, res, record, url)
      .then((handled) => (handled ? undefined : route(req, res, record, url)))
      .catch((err: unknown) => {
        log(`front error on ${record.path}: ${(err as Error).stack ?? String(err)}`);
        if (!res.headersSent) internalError(res);
        else res.destroy();
      });
  });

  const storage = createServer((req, res) => {
    const { record, url } = newRecord('storage', req);
    finish(res, record);
    if (!releaseRoutes.storage(req, res, record, url)) storageRoute(req, res, record, url);
  });

  track(front);
  track(storage);
  const listen = (server: Server, at = 0): Promise<number> =>
    new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(at, '127.0.0.1', () => {
        const a = server.address();
        if (a === null || typeof a === 'string') reject(new Error('no port'));
        else resolve(a.port);
      });
    });
  const port = await listen(front, options.port ?? 0);
  const storagePort = await listen(storage);
  if (!ctx.rootUrl) ctx.rootUrl = `http://127.0.0.1:${port}/`;
  if (!ctx.rootUrl.endsWith('/')) ctx.rootUrl += '/';
  ctx.storageUrl = `http://${storageHost}:${storagePort}`;

  const close = (server: Server): Promise<void> => new Promise((resolve) => server.close(() => resolve()));

  return {
    url: `http://127.0.0.1:${port}`,
    hostPort: `127.0.0.1:${port}`,
    port,
    rootUrl: ctx.rootUrl,
    storageUrl: ctx.storageUrl,
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
      ctx.jwtSecret = randomBytes(32);
    },
    setJwtTtl: (seconds) => {
      ctx.jwtTtl = seconds;
    },
    mintJwt: async (pat) => {
      const p = principalForPat(pat);
      if (!p) throw new Error('unknown or revoked PAT');
      return mint(p);
    },
    addListedTag: (repository, tag) => {
      ctx.listedTags.set(repository, [...(ctx.listedTags.get(repository) ?? []), tag]);
    },
    setBlobBehaviour: (digest, behaviour) => {
      if (behaviour === 'normal') behaviours.delete(digest);
      else behaviours.set(digest, behaviour);
    },
    setReferrersApi: (enabled) => {
      ctx.referrersApi = enabled;
    },
    addReferrer: (repository, subject, descriptor) => {
      const key = `${repository}\u0000${subject}`;
      ctx.referrers.set(key, [...(ctx.referrers.get(key) ?? []), descriptor]);
    },
    setServeDirect: (enabled) => {
      ctx.serveDirect = enabled;
    },
    addRelease: (repository, release) => addFrontRelease(downloads, repository, release),
    addPackageFile: (packageName, version, filename, data, createdAt) =>
      addFrontPackageFile(downloads, packageName, version, filename, data, createdAt),
    setDownloadServeDirect: (enabled) => {
      downloads.serveDirect = enabled;
    },
    setRangeSupport: (enabled) => {
      ctx.rangeSupport = enabled;
    },
    setPresignTtl: (seconds) => {
      ctx.presignTtl = seconds;
    },
    async stop() {
      const closing = [close(front), close(storage)];
      for (const s of openSockets) s.destroy();
      await Promise.all(closing);
      await agent.destroy();
    },
  };
}
