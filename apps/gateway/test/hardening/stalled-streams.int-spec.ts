import { createHash } from 'node:crypto';
import { chmod } from 'node:fs/promises';
import { connect, Socket } from 'node:net';
import { join } from 'node:path';
import { request } from 'undici';
import { EntitlementService } from '@gatehouse/entitlements';
import { AccessKeyService, MemberService } from '@gatehouse/members';
import { createTestDatabase, TestDatabase } from '@gatehouse/testing';
import { BuiltGateway, createTestGateway, startBuiltGateway } from '@gatehouse/testing/gateway';
import {
  ForgejoFront,
  generatePat,
  getFreePort,
  makeTempDir,
  prepareSeededStorage,
  RegistryProcess,
  SeedInfo,
  seedImage,
  startForgejoFront,
  startRegistry,
  TempDir,
} from '@gatehouse/testing/upstream';
import { NO_RATE_LIMITS, rawRequest, waitUntil } from './hardening-stack';

const CAP = 4;

/**
 * One member's downloads that never read must not exhaust the gateway: the built gateway, the
 * 100 MB blob cached, raw sockets that send a GET and never read a byte.
 */
describe('stalled blob streams (built gateway)', () => {
  let seed: SeedInfo;
  let registry: RegistryProcess;
  let front: ForgejoFront;
  let db: TestDatabase;
  let tmp: TempDir;
  let gw: BuiltGateway;
  let port: number;
  let url: string;
  const basic: Record<string, string> = {};
  const tokens: Record<string, string> = {};
  const pat = generatePat('stalled-streams');
  let bigPath: string;
  let big: { digest: string; size: number };
  const open: Socket[] = [];

  beforeAll(async () => {
    seed = await prepareSeededStorage();
    registry = await startRegistry({ copyFrom: seed.storageDir });
    front = await startForgejoFront({
      upstreamUrl: registry.url,
      knownOwners: ['acme'],
      tokens: { [pat]: { scopes: ['read:package'] } },
    });
    db = await createTestDatabase();
    tmp = await makeTempDir('stalled');
    await chmod(tmp.path, 0o755);
    const dataDir = join(tmp.path, 'data');
    const setup = await createTestGateway({ databaseUrl: db.url, dataDir });
    for (const username of ['mallory', 'alice']) {
      await setup.app.get(MemberService).create(username);
      const { key } = await setup.app.get(AccessKeyService).create(username, { name: 't' });
      await setup.app.get(EntitlementService).grant(username, 'acme/big', ['*']);
      basic[username] = 'Basic ' + Buffer.from(`${username}:${key}`).toString('base64');
    }
    await setup.close();
    port = await getFreePort();
    url = `http://127.0.0.1:${port}`;
    gw = startBuiltGateway({
      PORT: String(port),
      HOST: '127.0.0.1',
      DATA_DIR: dataDir,
      DATABASE_URL: db.url,
      FORGEJO_BASE_URL: front.url,
      FORGEJO_API_TOKEN: pat,
      FORGEJO_API_USERNAME: 'gatehouse',
      OCI_REGISTRY_SERVICE: `127.0.0.1:${port}`,
      OCI_REGISTRY_REALM: `${url}/auth/token`,
      UPSTREAM_RETRIES: '0',
      LOG_LEVEL: 'warn',
      ...NO_RATE_LIMITS,
      RATE_LIMIT_BLOB_STREAMS_PER_MEMBER: String(CAP),
      HTTP_SEND_STALL_SECONDS: '2',
    });
    await gw.waitUntilHealthy(url);
    for (const who of Object.keys(basic)) {
      const res = await fetch(`${url}/auth/token?service=127.0.0.1:${port}&scope=repository:acme/big:pull`, {
        headers: { authorization: basic[who] },
      });
      expect(res.status).toBe(200);
      tokens[who] = ((await res.json()) as { token: string }).token;
    }
    big = seedImage(seed, 'acme/big', '1.0').manifests[0].layers[0];
    bigPath = `/v2/acme/big/blobs/${big.digest}`;
    // Warm the cache (a hit is what a stalling member would aim at).
    expect(await pull('alice')).toEqual({ status: 200, digest: big.digest, size: big.size });
  }, 180_000);

  afterAll(async () => {
    for (const s of open) s.destroy();
    if (gw && gw.child.exitCode === null) {
      gw.child.kill('SIGTERM');
      await gw.exited;
    }
    await front?.stop();
    await registry?.stop();
    await db?.drop();
    await tmp?.cleanup();
  });

  async function pull(who: string): Promise<{ status: number; digest: string; size: number }> {
    const res = await request(`${url}${bigPath}`, { headers: { authorization: `Bearer ${tokens[who]}` } });
    const hash = createHash('sha256');
    let size = 0;
    for await (const c of res.body) {
      hash.update(c as Buffer);
      size += (c as Buffer).length;
    }
    return { status: res.statusCode, digest: `sha256:${hash.digest('hex')}`, size };
  }

  /** A GET of the big blob on a raw socket that never reads: the kernel buffers fill and stay full. */
  function stalledGet(who: string): Socket {
    const s = connect(port, '127.0.0.1');
    s.pause();
    s.on('error', () => undefined);
    s.write(
      `GET ${bigPath} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: Bearer ${tokens[who]}\r\n\r\n`,
    );
    open.push(s);
    return s;
  }

  async function metric(name: string): Promise<number> {
    const text = await (await fetch(`${url}/metrics`)).text();
    const m = new RegExp(`^${name} (\\d+)`, 'm').exec(text);
    return m ? Number(m[1]) : 0;
  }

  it('refuses streams beyond the cap with 429, keeps health and other members served, and closes stalled streams', async () => {
    const stalled = Array.from({ length: CAP }, () => stalledGet('mallory'));
    await waitUntil(
      async () => (await metric('gatehouse_blob_streams_active')) === CAP,
      15_000,
      'the slots taken',
    );

    const refused = await rawRequest(port, {
      path: bigPath,
      headers: [['Authorization', `Bearer ${tokens.mallory}`]],
    });
    expect(refused.status).toBe(429);
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
    expect(JSON.parse(refused.body.toString('utf8'))).toEqual({
      errors: [expect.objectContaining({ code: 'TOOMANYREQUESTS' })],
    });

    // Everyone else is served while mallory's streams hang.
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    const login = await fetch(`${url}/auth/token?service=127.0.0.1:${port}`, {
      headers: { authorization: basic.alice },
    });
    expect(login.status).toBe(200);
    expect(await pull('alice')).toEqual({ status: 200, digest: big.digest, size: big.size });

    // The stalled streams are closed after HTTP_SEND_STALL_SECONDS and every slot comes back.
    await waitUntil(
      async () => (await metric('gatehouse_http_send_stalls_total')) >= CAP,
      20_000,
      'the stalled streams to be closed',
    );
    await waitUntil(
      async () => (await metric('gatehouse_blob_streams_active')) === 0,
      10_000,
      'slots released',
    );
    for (const s of stalled) s.destroy();
  }, 120_000);

  it('gives the slot back when a client aborts, and never cuts a slow reader that keeps reading', async () => {
    const stallsBefore = await metric('gatehouse_http_send_stalls_total');
    // Clients that go away mid-stream.
    for (let i = 0; i < CAP + 2; i++) {
      const s = stalledGet('mallory');
      await waitUntil(
        async () => (await metric('gatehouse_blob_streams_active')) >= 1,
        10_000,
        'a slot taken',
      );
      s.destroy();
      await waitUntil(
        async () => (await metric('gatehouse_blob_streams_active')) === 0,
        10_000,
        'the slot back',
      );
    }

    // A slow reader: 1 MiB every 500 ms for 8 s, four times the stall timeout. The gateway sees its
    // progress in steps of the kernel's socket buffers (megabytes on loopback: the TCP window
    // reopens once about half the receive buffer is free), so a reader much slower than this
    // needs a longer timeout than the test's 2 s (security.md, "Stalled downloads").
    const slow = connect(port, '127.0.0.1');
    open.push(slow);
    let received = 0;
    let inBurst = 0;
    let closedEarly = false;
    slow.on('close', () => (closedEarly = true));
    slow.on('data', (c: Buffer) => {
      received += c.length;
      inBurst += c.length;
      if (inBurst < 1024 * 1024) return;
      inBurst = 0;
      slow.pause();
      setTimeout(() => slow.resume(), 500);
    });
    slow.write(
      `GET ${bigPath} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: Bearer ${tokens.mallory}\r\n\r\n`,
    );
    await new Promise((r) => setTimeout(r, 8_000));
    expect(closedEarly).toBe(false);
    expect(received).toBeGreaterThan(0);
    expect(received).toBeLessThan(big.size);
    expect(await metric('gatehouse_http_send_stalls_total')).toBe(stallsBefore);
    slow.destroy();
    await waitUntil(
      async () => (await metric('gatehouse_blob_streams_active')) === 0,
      10_000,
      'the slot back',
    );
  }, 120_000);
});
