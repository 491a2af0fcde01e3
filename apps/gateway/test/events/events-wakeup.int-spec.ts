import { chmod } from 'node:fs/promises';
import { join } from 'node:path';
import { Client } from 'pg';
import { MemberService } from '@gatehouse/members';
import { PgEventsWakeup, WebhookSubscriptions } from '@gatehouse/events';
import { createTestDatabase, TestDatabase } from '@gatehouse/testing';
import { startWebhookReceiver, WebhookReceiver } from '@gatehouse/testing/events';
import { createTestGateway, TestGateway } from '@gatehouse/testing/gateway';
import { makeTempDir, TempDir } from '@gatehouse/testing/upstream';

async function sql<T>(url: string, text: string, params: unknown[] = []): Promise<T[]> {
  const c = new Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query(text, params)).rows as T[];
  } finally {
    await c.end();
  }
}

const basic = (u: string, p: string) => 'Basic ' + Buffer.from(`${u}:${p}`).toString('base64');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The backend pids of the replicas' LISTEN connections. */
const listeners = (url: string) =>
  sql<{ pid: number }>(
    url,
    `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1
        AND query LIKE 'LISTEN%'`,
    [PgEventsWakeup.APPLICATION_NAME],
  ).then((rows) => rows.map((r) => r.pid).sort());

async function waitForListeners(url: string, n: number, not: number[] = []): Promise<number[]> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const pids = await listeners(url);
    if (pids.length === n && pids.every((p) => !not.includes(p))) return pids;
    if (Date.now() > deadline)
      throw new Error(`expected ${n} new LISTEN connections, saw ${pids.join(', ')}`);
    await sleep(100);
  }
}

/**
 * Events are claimed on a NOTIFY, not a poll: with EVENTS_POLL_SECONDS=30, two replicas on one
 * database deliver an event within ~2 s of its audit row, once; with their LISTEN connections
 * terminated they reconnect and nothing is lost or duplicated.
 */
describe('events: the worker wakes on NOTIFY', () => {
  let db: TestDatabase;
  let tmp: TempDir;
  let receiver: WebhookReceiver;
  let a: TestGateway;
  let b: TestGateway;
  const username = 'wakeup-member';

  beforeAll(async () => {
    db = await createTestDatabase();
    tmp = await makeTempDir('events-wakeup');
    await chmod(tmp.path, 0o755);
    receiver = await startWebhookReceiver();
    const env = {
      EVENTS_ALLOW_PRIVATE_TARGETS: 'true',
      EVENTS_POLL_SECONDS: '30',
      RATE_LIMIT_TOKEN_PER_IP: '0',
      RATE_LIMIT_ANONYMOUS_PER_IP: '0',
      AUTH_FAILED_LOGINS_PER_IP: '100000',
      AUTH_FAILED_LOGINS_PER_USERNAME: '100000',
    };
    a = await createTestGateway({
      env,
      databaseUrl: db.url,
      dataDir: join(tmp.path, 'a'),
      keepDatabase: true,
    });
    b = await createTestGateway({
      env: {
        ...env,
        TOKEN_SIGNING_KEY_FILE: join(tmp.path, 'a', 'token-signing-key.pem'),
        ACCESS_KEY_SECRET_FILE: join(tmp.path, 'a', 'access-key-secret'),
      },
      databaseUrl: db.url,
      dataDir: join(tmp.path, 'b'),
      keepDatabase: true,
    });
    await a.app.get(MemberService).create(username);
    const { secret } = await a.app
      .get(WebhookSubscriptions)
      .add({ url: receiver.url, eventTypes: ['login.*'], createdBy: 'test' });
    receiver.secret = secret;
    await waitForListeners(db.url, 2);
  });

  afterAll(async () => {
    await b?.close();
    await a?.close();
    await receiver?.stop();
    await db?.drop();
    await tmp?.cleanup();
  });

  /** Refused logins on alternate replicas; their request ids. */
  async function refusedLogins(n: number, gapMs = 0): Promise<string[]> {
    const ids: string[] = [];
    for (let i = 0; i < n; i++) {
      const gw = i % 2 === 0 ? a : b;
      const res = await fetch(`${gw.url}/auth/token?service=${gw.host}`, {
        headers: { authorization: basic(username, 'wrong') },
      });
      expect(res.status).toBe(401);
      ids.push(res.headers.get('x-request-id')!);
      if (gapMs) await sleep(gapMs);
    }
    return ids;
  }

  const ours = (requestIds: string[]) =>
    receiver.received.filter((r) => requestIds.includes(String(r.event.data.requestId)));

  async function expectDeliveredOnce(requestIds: string[], timeoutMs: number): Promise<number[]> {
    await receiver.waitFor(
      () => new Set(ours(requestIds).map((r) => r.event.id)).size === requestIds.length,
      timeoutMs,
    );
    // Time for a double delivery to show up, were there one.
    await sleep(1000);
    const got = ours(requestIds);
    expect(got).toHaveLength(requestIds.length);
    const rows = await sql<{ n: string }>(
      db.url,
      `SELECT count(*) AS n FROM webhook_deliveries WHERE status = 'delivered' AND attempts = 1
          AND event_id = ANY($1::uuid[])`,
      [got.map((r) => r.event.id)],
    );
    expect(Number(rows[0].n)).toBe(requestIds.length);
    expect(receiver.rejected).toBe(0);
    // Latency: the audit row's time to arrival.
    return got.map((r) => r.at - Date.parse(String((r.event as { time?: string }).time)));
  }

  it('delivers within ~2 s of the audit row although the poll is 30 s, each event once', async () => {
    const ids = await refusedLogins(6, 300);
    const latencies = await expectDeliveredOnce(ids, 10_000);
    expect(Math.max(...latencies)).toBeLessThan(2_000);
    for (const gw of [a, b]) {
      const metrics = await (await fetch(`${gw.url}/metrics`)).text();
      expect(metrics).toMatch(/gatehouse_events_worker_wakeups_total\{cause="notify"\} [1-9]/);
      expect(metrics).toMatch(/gatehouse_events_worker_listening 1/);
    }
  });

  it('terminated LISTEN connections reconnect: nothing lost or duplicated, wake-ups resume', async () => {
    const before = await listeners(db.url);
    expect(before).toHaveLength(2);
    await sql(db.url, `SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid`, [before]);
    // Events written while the wake-up connections are down or reconnecting.
    const during = await refusedLogins(10);
    await expectDeliveredOnce(during, 20_000);
    await waitForListeners(db.url, 2, before);
    const after = await refusedLogins(4, 300);
    const latencies = await expectDeliveredOnce(after, 10_000);
    expect(Math.max(...latencies)).toBeLessThan(2_000);
  });
});
