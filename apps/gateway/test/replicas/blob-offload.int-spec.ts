import { createHash } from 'node:crypto';
import { userInfo } from 'node:os';
import { Client } from 'pg';
import { request } from 'undici';
import { AuditService } from '@gatehouse/audit';
import { AccessKeyService } from '@gatehouse/members';
import { startTestNginx, TestNginx } from '@gatehouse/testing/nginx';
import { seedImage, SeedLayer } from '@gatehouse/testing/upstream';
import { HardeningStack, Member, startHardeningStack } from '../hardening/hardening-stack';

const LOCATION = '/_gatehouse/blobs/gateway/';

interface Got {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

async function get(
  url: string,
  headers: Record<string, string> = {},
  method: 'GET' | 'HEAD' = 'GET',
): Promise<Got> {
  const res = await request(url, { method, headers });
  const body = Buffer.from(await res.body.arrayBuffer());
  const flat: Record<string, string> = {};
  for (const [k, v] of Object.entries(res.headers)) flat[k] = Array.isArray(v) ? v.join(', ') : String(v);
  return { status: res.statusCode, headers: flat, body };
}

const sha256 = (b: Buffer) => 'sha256:' + createHash('sha256').update(b).digest('hex');

/**
 * OCI_BLOB_OFFLOAD=x-accel-redirect behind Debian's nginx running docker/nginx.conf with its
 * `#offload ` lines enabled (both gateway names of the shipped file point at the one gateway):
 * authorised, audited cache hits are sent by nginx from the cache directory.
 */
describe('blob offload to nginx (X-Accel-Redirect)', () => {
  let stack: HardeningStack;
  let nginx: TestNginx;
  let entitled: Member;
  let stranger: Member;
  let layer: SeedLayer;
  let blobPath: string;
  let auth: Record<string, string>;

  beforeAll(async () => {
    stack = await startHardeningStack({
      env: {
        OCI_BLOB_OFFLOAD: 'x-accel-redirect',
        OCI_BLOB_OFFLOAD_LOCATION: LOCATION,
        TRUST_PROXY: 'loopback',
      },
    });
    entitled = await stack.member({ 'acme/app': ['*'] });
    stranger = await stack.member({ 'acme/big': ['*'] });
    nginx = await startTestNginx({
      upstreams: [stack.gw.port, stack.gw.port],
      offload: {
        user: userInfo().username,
        cacheDirs: [stack.gw.config.cache.dir, stack.gw.config.cache.dir],
      },
    });
    layer = seedImage(stack.seed, 'acme/app', 'v1.0.0').manifests[0].layers[0];
    blobPath = `/v2/acme/app/blobs/${layer.digest}`;
    auth = { authorization: `Bearer ${await stack.token(entitled, ['repository:acme/app:pull'])}` };
  });

  afterAll(async () => {
    await nginx?.stop();
    await stack?.stop();
  });

  async function bytesServedFromCache(): Promise<number> {
    const text = (await get(`${stack.gw.url}/metrics`)).body.toString();
    const m = /^gatehouse_blob_bytes_served_total\{source="cache"\} (\d+)$/m.exec(text);
    return m ? Number(m[1]) : 0;
  }

  it('streams a miss from the gateway, then nginx sends the hit from the cache, byte for byte', async () => {
    const cold = await get(`${nginx.url}${blobPath}`, auth);
    expect(cold.status).toBe(200);
    expect(sha256(cold.body)).toBe(layer.digest);
    await stack.gw.app.get(AuditService).flush();

    const before = await bytesServedFromCache();
    const warm = await get(`${nginx.url}${blobPath}`, auth);
    expect(warm.status).toBe(200);
    expect(warm.body.length).toBe(layer.size);
    expect(sha256(warm.body)).toBe(layer.digest);
    expect(warm.headers).toMatchObject({
      'content-type': 'application/octet-stream',
      'docker-content-digest': layer.digest,
      'content-length': String(layer.size),
      etag: `"${layer.digest}"`,
      'accept-ranges': 'bytes',
      'docker-distribution-api-version': 'registry/2.0',
    });
    expect(warm.headers['x-accel-redirect']).toBeUndefined();
    // The gateway read no byte of it: nginx did.
    expect(await bytesServedFromCache()).toBe(before);

    // What nginx got from the gateway: the redirect and no body.
    const direct = await get(`${stack.gw.url}${blobPath}`, auth);
    expect(direct.status).toBe(200);
    expect(direct.body.length).toBe(0);
    const hex = layer.digest.slice('sha256:'.length);
    expect(direct.headers['x-accel-redirect']).toBe(`${LOCATION}sha256/${hex.slice(0, 2)}/${hex}`);
    expect(direct.headers['docker-content-digest']).toBe(layer.digest);
  });

  it('answers a Range from nginx with the right 206 bytes', async () => {
    const whole = await get(`${nginx.url}${blobPath}`, auth);
    const part = await get(`${nginx.url}${blobPath}`, { ...auth, range: 'bytes=10-99' });
    expect(part.status).toBe(206);
    expect(part.headers['content-range']).toBe(`bytes 10-99/${layer.size}`);
    expect(part.headers['docker-content-digest']).toBe(layer.digest);
    expect(part.body).toEqual(whole.body.subarray(10, 100));

    const suffix = await get(`${nginx.url}${blobPath}`, { ...auth, range: 'bytes=-5' });
    expect(suffix.status).toBe(206);
    expect(suffix.body).toEqual(whole.body.subarray(layer.size - 5));

    // Unsatisfiable: the gateway's own 416 (one parser), nothing redirected.
    const beyond = await get(`${nginx.url}${blobPath}`, { ...auth, range: `bytes=${layer.size}-` });
    expect(beyond.status).toBe(416);
    expect(beyond.headers['content-range']).toBe(`bytes */${layer.size}`);
  });

  it('keeps HEAD on the gateway', async () => {
    const head = await get(`${nginx.url}${blobPath}`, auth, 'HEAD');
    expect(head.status).toBe(200);
    expect(head.headers['content-length']).toBe(String(layer.size));
    expect(head.headers['docker-content-digest']).toBe(layer.digest);
  });

  it('hides the internal location from everyone: 404 from nginx', async () => {
    const hex = layer.digest.slice('sha256:'.length);
    const internal = `${LOCATION}sha256/${hex.slice(0, 2)}/${hex}`;
    for (const headers of [{}, auth]) {
      const r = await get(`${nginx.url}${internal}`, headers);
      expect(r.status).toBe(404);
      expect(r.body.includes(Buffer.from(layer.digest))).toBe(false);
      expect(r.body.length).toBeLessThan(1024);
    }
  });

  it('refuses an unentitled member and an anonymous client exactly as without offload', async () => {
    const strangerAuth = {
      authorization: `Bearer ${await stack.token(stranger, ['repository:acme/app:pull'])}`,
    };
    const viaNginx = await get(`${nginx.url}${blobPath}`, strangerAuth);
    const direct = await get(`${stack.gw.url}${blobPath}`, strangerAuth);
    expect(viaNginx.status).toBe(404);
    // The same envelope but for the request id in its detail.
    const error = (r: Got) => {
      const { code, message } = (
        JSON.parse(r.body.toString()) as { errors: Array<{ code: string; message: string }> }
      ).errors[0];
      return { code, message };
    };
    expect(error(viaNginx)).toEqual(error(direct));
    expect(error(direct).code).toBe('NAME_UNKNOWN');
    expect(direct.headers['x-accel-redirect']).toBeUndefined();

    const anonymous = await get(`${nginx.url}${blobPath}`);
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers['www-authenticate']).toMatch(/^Bearer realm=/);
    expect(anonymous.body.length).toBeLessThan(1024);
  });

  it('audits every offloaded GET: cache=hit, the status and the bytes nginx sends', async () => {
    const whole = await get(`${nginx.url}${blobPath}`, auth);
    const part = await get(`${nginx.url}${blobPath}`, { ...auth, range: 'bytes=100-149' });
    expect([whole.status, part.status]).toEqual([200, 206]);
    const ids = [whole.headers['x-request-id'], part.headers['x-request-id']];
    expect(ids.every(Boolean)).toBe(true);
    await stack.gw.app.get(AuditService).flush();
    const client = new Client({ connectionString: stack.gw.databaseUrl });
    await client.connect();
    try {
      const { rows } = await client.query<{
        request_id: string;
        outcome: string;
        http_status: number;
        cache: string;
        bytes: string;
        username: string;
      }>(
        `SELECT request_id, outcome, http_status, cache, bytes, username FROM audit_events
          WHERE request_id = ANY($1) AND action = 'blob.get'`,
        [ids],
      );
      const byId = new Map(rows.map((r) => [r.request_id, r]));
      expect(
        [byId.get(ids[0]), byId.get(ids[1])].map(
          (r) => r && [r.outcome, r.http_status, r.cache, Number(r.bytes), r.username],
        ),
      ).toEqual([
        ['allowed', 200, 'hit', layer.size, entitled.username],
        ['allowed', 206, 'hit', 50, entitled.username],
      ]);
    } finally {
      await client.end();
    }
  });

  it('refuses a revoked key at once: its token gets no byte of an offloaded path', async () => {
    const who = await stack.member({ 'acme/app': ['*'] });
    const bearer = { authorization: `Bearer ${await stack.token(who, ['repository:acme/app:pull'])}` };
    expect((await get(`${nginx.url}${blobPath}`, bearer)).status).toBe(200);
    const [key] = await stack.gw.app.get(AccessKeyService).list(who.username);
    await stack.gw.app.get(AccessKeyService).revoke(key.id);
    // The revocation reaches the member-state cache through LISTEN/NOTIFY, well within a second.
    const deadline = Date.now() + 2_000;
    let last: Got | undefined;
    for (;;) {
      last = await get(`${nginx.url}${blobPath}`, bearer);
      if (last.status === 401 || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(last.status).toBe(401);
    expect(last.body.length).toBeLessThan(1024);
    // Nor can the key get a new token.
    await expect(stack.token(who, ['repository:acme/app:pull'])).rejects.toThrow();
    // Nor does the internal path it was redirected to help anyone holding it.
    const hex = layer.digest.slice('sha256:'.length);
    const internal = await get(`${nginx.url}${LOCATION}sha256/${hex.slice(0, 2)}/${hex}`, bearer);
    expect(internal.status).toBe(404);
  });
});
