import { createServer, Server } from 'node:http';
import { mkdir, writeFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { AddressInfo } from 'node:net';
import { startTestNginx, TestNginx } from '@gatehouse/testing/nginx';
import { makeTempDir, TempDir } from '@gatehouse/testing/upstream';
import { rawRequest } from '../hardening/hardening-stack';

const LOCATION = '/_gatehouse/blobs/gateway/';
const HEX = 'ab'.repeat(32);
const SECRET = Buffer.from('the bytes of a cached blob nobody may fetch without the gateway\n');

/**
 * Debian's nginx with the shipped docker/nginx.conf in offload mode, probed as an attacker would.
 * Behind it is not the gateway but a hostile stand-in that does what a buggy gateway route might:
 * it reflects every X-Accel-* request header back as a response header, and its /leak route
 * answers `X-Accel-Redirect` to the cached file. The shipped configuration must keep the file
 * unreachable anyway: the internal location from outside (path tricks, encodings), a client's
 * X-Accel-* headers never reaching a gateway, and X-Accel-* answers honoured on blob GETs only.
 */
describe('offload mode probed: the internal location stays internal', () => {
  let nginx: TestNginx;
  let cache: TempDir;
  let hostile: Server;
  const seen: Array<Record<string, string | string[] | undefined>> = [];

  beforeAll(async () => {
    cache = await makeTempDir('offload-probe-cache');
    await mkdir(join(cache.path, 'sha256', HEX.slice(0, 2)), { recursive: true });
    await writeFile(join(cache.path, 'sha256', HEX.slice(0, 2), HEX), SECRET);
    hostile = createServer((req, res) => {
      seen.push(req.headers);
      const headers: Record<string, string> = { 'content-type': 'text/plain' };
      for (const [k, v] of Object.entries(req.headers))
        if (k.startsWith('x-accel-') && typeof v === 'string') headers[k] = v;
      if (req.url === '/leak' || req.url?.startsWith('/v2/leak/'))
        headers['x-accel-redirect'] = `${LOCATION}sha256/${HEX.slice(0, 2)}/${HEX}`;
      res.writeHead(200, headers).end('upstream answer\n');
    });
    await new Promise<void>((r) => hostile.listen(0, '127.0.0.1', r));
    const port = (hostile.address() as AddressInfo).port;
    nginx = await startTestNginx({
      upstreams: [port, port],
      offload: { user: userInfo().username, cacheDirs: [cache.path, cache.path] },
    });
  });

  afterAll(async () => {
    await nginx?.stop();
    await new Promise((r) => hostile?.close(r));
    await cache?.cleanup();
  });

  const internal = `${LOCATION}sha256/${HEX.slice(0, 2)}/${HEX}`;
  const leaked = (body: Buffer) => body.includes(SECRET);

  it('answers 404 (or the stand-in) to direct, dotted, doubled and encoded paths of the location', async () => {
    for (const path of [
      internal,
      `/v2/../${internal.slice(1)}`,
      `/_gatehouse/blobs/gateway/./sha256/${HEX.slice(0, 2)}/${HEX}`,
      `/_gatehouse/blobs/x/../gateway/sha256/${HEX.slice(0, 2)}/${HEX}`,
      `/${internal}`,
      internal.replace('/_gatehouse', '/%5Fgatehouse'),
      internal.replaceAll('/', '%2F'),
      `/%2F${internal.slice(1).replaceAll('/', '%2F')}`,
      internal.replace('/_gatehouse', '/_GATEHOUSE'),
      `/v2/acme/app/blobs/sha256:${HEX}/..%2F..%2F..%2F..%2F..${internal}`,
      `${internal}%00`,
      `${internal}?x=1`,
    ]) {
      const r = await rawRequest(nginx.port, { path });
      expect([path, leaked(r.body)]).toEqual([path, false]);
      expect([path, r.status === 200 && r.body.length === SECRET.length]).toEqual([path, false]);
    }
  });

  it("never passes a client's X-Accel-* headers to a gateway, so nothing can reflect them", async () => {
    for (const path of ['/v2/', `/v2/acme/app/blobs/sha256:${HEX}`, '/downloads/releases/acme/tool']) {
      seen.length = 0;
      const r = await rawRequest(nginx.port, {
        path,
        headers: [
          ['X-Accel-Redirect', internal],
          ['X-Accel-Buffering', 'yes'],
          ['X-Accel-Limit-Rate', '1'],
          ['X-Accel-Expires', '3600'],
          ['X-Accel-Charset', 'utf-8'],
        ],
      });
      expect([path, leaked(r.body)]).toEqual([path, false]);
      expect(r.body.toString()).toBe('upstream answer\n');
      expect(seen).toHaveLength(1);
      expect(Object.keys(seen[0]).filter((k) => k.startsWith('x-accel-'))).toEqual([]);
    }
  });

  it('honours an X-Accel-Redirect answer on blob GETs only, never on any other route', async () => {
    const other = await rawRequest(nginx.port, { path: '/leak' });
    expect(leaked(other.body)).toBe(false);
    expect(other.body.toString()).toBe('upstream answer\n');
    expect(other.headers['x-accel-redirect']).toBeUndefined();
    // The blob location is where the gateway offloads: there the answer is honoured (the mode works).
    const blob = await rawRequest(nginx.port, { path: `/v2/leak/blobs/sha256:${HEX}` });
    expect(blob.status).toBe(200);
    expect(blob.body.equals(SECRET)).toBe(true);
  });
});
