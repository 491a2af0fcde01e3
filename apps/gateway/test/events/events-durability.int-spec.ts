import { chmod } from 'node:fs/promises';
import { join } from 'node:path';
import { Client } from 'pg';
import { AccessKeyService, MemberService } from '@gatehouse/members';
import { WebhookSubscriptions } from '@gatehouse/events';
import { createTestDatabase, TestDatabase } from '@gatehouse/testing';
import { startWebhookReceiver, WebhookReceiver } from '@gatehouse/testing/events';
import { createTestGateway, startBuiltGateway, TestGateway } from '@gatehouse/testing/gateway';
import { getFreePort, makeTempDir, TempDir } from '@gatehouse/testing/upstream';

const NO_LIMITS = {
  RATE_LIMIT_TOKEN_PER_IP: '0',
  RATE_LIMIT_ANONYMOUS_PER_IP: '0',
  AUTH_FAILED_LOGINS_PER_IP: '100000',
  AUTH_FAILED_LOGINS_PER_USERNAME: '100000',
};

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

/** The outbox survives a SIGKILL of the built gateway, and replicas on one database share it. */
describe('events: durable and shared by replicas', () => {
  let db: TestDatabase;
  let tmp: TempDir;
  let receiver: WebhookReceiver;
  let username: string;
  let key: string;

  beforeAll(async () => {
    db = await createTestDatabase();
    tmp = await makeTempDir('events-durable');
    await chmod(tmp.path, 0o755);
    receiver = await startWebhookReceiver();
    const setup = await createTestGateway({
      env: { EVENTS_ALLOW_PRIVATE_TARGETS: 'true' },
      databaseUrl: db.url,
      dataDir: join(tmp.path, 'a'),
      keepDatabase: true,
    });
    try {
      username = 'durable-member';
      await setup.app.get(MemberService).create(username);
      key = (await setup.app.get(AccessKeyService).create(username, { name: 't' })).key;
      const { secret } = await setup.app
        .get(WebhookSubscriptions)
        .add({ url: receiver.url, eventTypes: ['login.*'], createdBy: 'test' });
      receiver.secret = secret;
    } finally {
      await setup.close();
    }
  });

  afterAll(async () => {
    await receiver?.stop();
    await db?.drop();
    await tmp?.cleanup();
  });

  it('a gateway killed (SIGKILL) after the audit write and before delivery delivers once restarted', async () => {
    await receiver.down();
    const port = await getFreePort();
    const env = {
      PORT: String(port),
      HOST: '127.0.0.1',
      DATA_DIR: join(tmp.path, 'a'),
      DATABASE_URL: db.url,
      OCI_REGISTRY_SERVICE: `127.0.0.1:${port}`,
      OCI_REGISTRY_REALM: `http://127.0.0.1:${port}/auth/token`,
      EVENTS_ALLOW_PRIVATE_TARGETS: 'true',
      // The killed gateway may have claimed the deliveries (and found the receiver down) before
      // the kill: they come back when its lease ends, 4 × timeout + 30 s = 38 s here.
      EVENTS_WEBHOOK_TIMEOUT_SECONDS: '2',
      ...NO_LIMITS,
    };
    const url = `http://127.0.0.1:${port}`;
    let gw = startBuiltGateway(env);
    await gw.waitUntilHealthy(url);
    const requestIds: string[] = [];
    try {
      for (let i = 0; i < 8; i++) {
        const res = await fetch(`${url}/auth/token?service=127.0.0.1:${port}`, {
          headers: { authorization: basic(username, i % 2 === 0 ? key : 'wrong') },
        });
        expect(res.status).toBe(i % 2 === 0 ? 200 : 401);
        requestIds.push(res.headers.get('x-request-id')!);
      }
      // The audit rows (and with them the outbox rows) are committed; nothing was delivered.
      const deadline = Date.now() + 20_000;
      while (
        (await sql(db.url, `SELECT 1 FROM audit_events WHERE request_id = ANY($1)`, [requestIds])).length < 8
      ) {
        if (Date.now() > deadline) throw new Error('the audit rows were not written');
        await new Promise((r) => setTimeout(r, 50));
      }
      gw.child.kill('SIGKILL');
      await gw.exited;
      expect(receiver.received).toEqual([]);
    } finally {
      if (gw.child.exitCode === null && gw.child.signalCode === null) gw.child.kill('SIGKILL');
    }
    const rows = await sql<{ id: string }>(db.url, `SELECT id FROM audit_events WHERE request_id = ANY($1)`, [
      requestIds,
    ]);

    await receiver.up();
    gw = startBuiltGateway(env);
    try {
      await gw.waitUntilHealthy(url);
      await receiver.waitFor((r) => rows.every((row) => r.some((e) => e.event.id === row.id)), 75_000);
      const types = receiver.received
        .filter((r) => rows.some((row) => row.id === r.event.id))
        .map((r) => r.event.type)
        .sort();
      expect(types).toEqual([...Array(4).fill('login.issued'), ...Array(4).fill('login.refused')]);
    } finally {
      gw.child.kill('SIGTERM');
      await gw.exited;
    }
  });

  it('a gateway stopped gracefully hands back the deliveries it claimed and had not started', async () => {
    const slow = await startWebhookReceiver();
    slow.answer = { status: 204, delayMs: 1_500 };
    const gw = await createTestGateway({
      // One request in flight per subscription, four claimed: three wait in the gateway's queue.
      env: { EVENTS_ALLOW_PRIVATE_TARGETS: 'true', EVENTS_WEBHOOK_CONCURRENCY: '4', ...NO_LIMITS },
      databaseUrl: db.url,
      dataDir: join(tmp.path, 'a'),
      keepDatabase: true,
    });
    let subscription = '';
    try {
      const made = await gw.app
        .get(WebhookSubscriptions)
        .add({ url: slow.url, eventTypes: ['login.refused'], createdBy: 'test' });
      slow.secret = made.secret;
      subscription = made.subscription.id;
      for (let i = 0; i < 6; i++) {
        const res = await fetch(`${gw.url}/auth/token?service=${gw.host}`, {
          headers: { authorization: basic(username, 'wrong') },
        });
        expect(res.status).toBe(401);
      }
      const claimed = async () =>
        (
          await sql<{ n: number }>(
            db.url,
            `SELECT count(*)::int AS n FROM webhook_deliveries WHERE subscription_id = $1 AND attempts = 1`,
            [subscription],
          )
        )[0].n;
      const deadline = Date.now() + 20_000;
      while ((await claimed()) < 4) {
        if (Date.now() > deadline) throw new Error('the gateway did not claim four deliveries');
        await new Promise((r) => setTimeout(r, 50));
      }
    } finally {
      await gw.close();
    }
    try {
      const rows = await sql<{ status: string; attempts: number; due: boolean }>(
        db.url,
        `SELECT status, attempts, next_attempt_at <= now() AS due FROM webhook_deliveries
          WHERE subscription_id = $1 ORDER BY attempts DESC, status`,
        [subscription],
      );
      // The one in flight finished (delivered); the three queued are due again, their attempt uncounted.
      expect(rows[0]).toMatchObject({ status: 'delivered', attempts: 1 });
      expect(
        rows.filter((r) => r.attempts === 0 && r.status === 'pending' && r.due).length,
      ).toBeGreaterThanOrEqual(3);
      expect(slow.received).toHaveLength(1);
    } finally {
      await sql(db.url, `DELETE FROM webhook_subscriptions WHERE id = $1`, [subscription]);
      await slow.stop();
    }
  });

  describe('two replicas on one database', () => {
    let a: TestGateway;
    let b: TestGateway;

    beforeAll(async () => {
      // The secrets every replica shares: those the first gateway made in its DATA_DIR.
      const env = {
        EVENTS_ALLOW_PRIVATE_TARGETS: 'true',
        TOKEN_SIGNING_KEY_FILE: join(tmp.path, 'a', 'token-signing-key.pem'),
        ACCESS_KEY_SECRET_FILE: join(tmp.path, 'a', 'access-key-secret'),
        ...NO_LIMITS,
      };
      a = await createTestGateway({
        env,
        databaseUrl: db.url,
        dataDir: join(tmp.path, 'a'),
        keepDatabase: true,
      });
      b = await createTestGateway({
        env,
        databaseUrl: db.url,
        dataDir: join(tmp.path, 'b'),
        keepDatabase: true,
      });
    });
    afterAll(async () => {
      await b?.close();
      await a?.close();
    });

    it('deliver each event once', async () => {
      const before = receiver.received.length;
      const requestIds: string[] = [];
      for (let i = 0; i < 60; i++) {
        const gw = i % 2 === 0 ? a : b;
        const res = await fetch(`${gw.url}/auth/token?service=${gw.host}`, {
          headers: { authorization: basic(username, 'wrong') },
        });
        expect(res.status).toBe(401);
        requestIds.push(res.headers.get('x-request-id')!);
      }
      const ours = () =>
        receiver.received.slice(before).filter((r) => requestIds.includes(String(r.event.data.requestId)));
      await receiver.waitFor(() => new Set(ours().map((r) => r.event.id)).size === 60, 60_000);
      // Time for a double delivery to show up, were there one.
      await new Promise((r) => setTimeout(r, 1500));
      expect(ours()).toHaveLength(60);
      const delivered = await sql<{ n: string }>(
        db.url,
        `SELECT count(*) AS n FROM webhook_deliveries WHERE status = 'delivered' AND attempts = 1
            AND event_id = ANY($1::uuid[])`,
        [ours().map((r) => r.event.id)],
      );
      expect(Number(delivered[0].n)).toBe(60);
    });
  });
});
