import { DataSource } from 'typeorm';
import { ReplicaHeartbeat } from '@gatehouse/database';
import { ManualClock } from '@gatehouse/observability';
import {
  createTestGateway,
  startStoppablePostgres,
  StoppablePostgres,
  TestGateway,
} from '@gatehouse/testing/gateway';

const ADMIN_TOKEN = 'replica-heartbeat-spec-admin-token-0123456789';
const SECOND = 1000;

/** A console session on `gw` through the ADMIN_TOKEN form; the cookie to send. */
async function consoleCookie(gw: TestGateway): Promise<string> {
  const res = await fetch(`${gw.url}/console/login/token`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', 'sec-fetch-site': 'same-origin' },
    body: new URLSearchParams({ token: ADMIN_TOKEN }).toString(),
  });
  expect(res.status).toBe(200);
  return res.headers.get('set-cookie')!.split(';')[0];
}

/** The replica ids in the health page's two tables. */
async function healthPage(gw: TestGateway): Promise<{ recent: string[]; quiet: string[] }> {
  const res = await fetch(`${gw.url}/console/health`, { headers: { cookie: await consoleCookie(gw) } });
  expect(res.status).toBe(200);
  const html = await res.text();
  const ids = (caption: RegExp) => {
    const table = new RegExp(`<caption>[^<]*${caption.source}[^<]*</caption>(.*?)</table>`, 's').exec(html);
    return table ? [...table[1].matchAll(/<th scope="row"><code>([^<]+)<\/code>/g)].map((m) => m[1]) : [];
  };
  return { recent: ids(/seen in the last minute/), quiet: ids(/gone quiet/) };
}

/**
 * Two gateways on one database, each writing its heartbeat row: both pages list both; the one
 * that stops goes quiet after a minute and is pruned after a day. Gateway A's clock is moved by
 * hand (its beats are called directly, as its 15 s timer would).
 */
describe('replica heartbeats on one database', () => {
  let clock: ManualClock;
  let a: TestGateway;
  let b: TestGateway | null;
  let idA: string;
  let idB: string;

  const env = { ADMIN_TOKEN, FORGEJO_BASE_URL: 'http://127.0.0.1:9', FORGEJO_API_TOKEN: 'f'.repeat(40) };

  beforeAll(async () => {
    clock = new ManualClock(Date.now());
    a = await createTestGateway({ env, clock });
    // Same DATA_DIR: the same token signing key and access-key secret, as replicas must share.
    b = await createTestGateway({ env, databaseUrl: a.databaseUrl, keepDatabase: true, dataDir: a.dataDir });
    idA = a.app.get(ReplicaHeartbeat).self.id;
    idB = b!.app.get(ReplicaHeartbeat).self.id;
  });

  afterAll(async () => {
    await b?.close();
    await a?.close();
  });

  it('each replica writes its row at start, and both health pages list both', async () => {
    expect(idA).not.toBe(idB);
    const rows: Array<{ id: string; listen_address: string; version: string }> = await a.app
      .get(DataSource)
      .query('SELECT id, listen_address, version FROM gateway_replicas ORDER BY started_at');
    expect(rows).toEqual([
      { id: idA, listen_address: a.host, version: expect.stringMatching(/^\d+\.\d+\.\d+/) },
      { id: idB, listen_address: b!.host, version: expect.stringMatching(/^\d+\.\d+\.\d+/) },
    ]);
    for (const gw of [a, b!]) {
      const page = await healthPage(gw);
      expect(page.recent.sort()).toEqual([idA, idB].sort());
      expect(page.quiet).toEqual([]);
    }
  });

  it('a stopped replica stops beating, goes quiet after a minute, and is pruned after a day', async () => {
    const db = a.app.get(DataSource);
    const lastSeenB = async () =>
      (
        (await db.query('SELECT last_seen_at FROM gateway_replicas WHERE id = $1', [idB])) as Array<{
          last_seen_at: Date;
        }>
      )[0]?.last_seen_at;
    await b!.close();
    b = null;
    const stoppedAt = await lastSeenB();
    expect(stoppedAt).toBeInstanceOf(Date);
    const heartbeat = a.app.get(ReplicaHeartbeat);
    // B ran on the real clock, which has moved on since A's stood still: a minute after B's last beat.
    clock.advance(stoppedAt.getTime() + 61 * SECOND - clock.now());
    await heartbeat.beat();
    expect(await lastSeenB()).toEqual(stoppedAt);
    expect(await healthPage(a)).toEqual({ recent: [idA], quiet: [idB] });
    clock.advance(24 * 3600 * SECOND);
    await heartbeat.beat();
    expect(await lastSeenB()).toBeUndefined();
    expect(await healthPage(a)).toEqual({ recent: [idA], quiet: [] });
  });
});

/**
 * PostgreSQL stopped under a running gateway (a cluster of its own: the shared test cluster must
 * keep serving other suites): beats fail without throwing, one warning, and the row moves on again
 * once the database is back.
 */
describe('replica heartbeat through a database outage', () => {
  let pg: StoppablePostgres;
  let gw: TestGateway;
  let clock: ManualClock;

  beforeAll(async () => {
    pg = await startStoppablePostgres('heartbeat-outage');
    clock = new ManualClock(Date.now());
    gw = await createTestGateway({ clock, databaseUrl: pg.url });
  });

  afterAll(async () => {
    await gw?.close();
    await pg?.close();
  });

  it('keeps the gateway up while beats fail, and beats again once the database is back', async () => {
    const heartbeat = gw.app.get(ReplicaHeartbeat);
    const lastSeen = async () =>
      (
        (await gw.app
          .get(DataSource)
          .query('SELECT last_seen_at FROM gateway_replicas WHERE id = $1', [heartbeat.self.id])) as Array<{
          last_seen_at: Date;
        }>
      )[0].last_seen_at.getTime();
    expect(await lastSeen()).toBe(clock.now());
    await pg.stop();
    for (let i = 0; i < 3; i++) {
      clock.advance(15 * SECOND);
      await expect(heartbeat.beat()).resolves.toBeUndefined();
    }
    const warnings = gw.logs.filter((l) => String(l.msg).startsWith('replica heartbeat failed'));
    expect(warnings).toHaveLength(1);
    expect((await fetch(`${gw.url}/healthz`)).status).toBe(200);
    await pg.start();
    clock.advance(15 * SECOND);
    // The pool reconnects by itself; beat until a beat gets through (the 15 s timer would).
    const recovered = () => gw.logs.some((l) => l.msg === 'replica heartbeat written again');
    for (let i = 0; i < 100 && !recovered(); i++) {
      await heartbeat.beat();
      if (!recovered()) await new Promise((r) => setTimeout(r, 200));
    }
    expect(recovered()).toBe(true);
    expect(await lastSeen()).toBe(clock.now());
  });
});
