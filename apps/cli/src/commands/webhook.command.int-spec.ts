import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Client } from 'pg';
import { createTestDatabase, TestDatabase } from '@gatehouse/testing';
import { startWebhookReceiver, WebhookReceiver } from '@gatehouse/testing/events';
import { runCli } from '../cli';
import { captureIo } from '../test/capture-io';

/** `gatehouse webhook …` and the events of CLI changes, against a real PostgreSQL and a real receiver. */
describe('gatehouse webhook', () => {
  let db: TestDatabase;
  let dataDir: string;
  let env: NodeJS.ProcessEnv;
  let receiver: WebhookReceiver;

  beforeAll(async () => {
    db = await createTestDatabase();
    receiver = await startWebhookReceiver();
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatehouse-cli-webhooks-'));
    env = { DATABASE_URL: db.url, DATA_DIR: dataDir };
    fs.writeFileSync(path.join(dataDir, 'access-key-secret'), randomBytes(32).toString('hex') + '\n', {
      mode: 0o600,
    });
  });
  afterAll(async () => {
    await receiver?.stop();
    await db?.drop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  async function run(args: string[], extraEnv: NodeJS.ProcessEnv = {}) {
    const io = captureIo();
    const code = await runCli(args, io, { ...env, ...extraEnv });
    return { code, out: io.out(), err: io.err() };
  }

  async function query<T = Record<string, unknown>>(sql: string, params: unknown[] = []): Promise<T[]> {
    const c = new Client({ connectionString: db.url });
    await c.connect();
    try {
      return (await c.query(sql, params)).rows as T[];
    } finally {
      await c.end();
    }
  }

  it('refuses a private-range URL unless EVENTS_ALLOW_PRIVATE_TARGETS, and an unknown event type', async () => {
    const refused = await run(['webhook', 'add', receiver.url]);
    expect(refused.code).toBe(2);
    expect(refused.err).toMatch(/private, loopback or link-local address.*EVENTS_ALLOW_PRIVATE_TARGETS/);
    const badType = await run(['webhook', 'add', receiver.url, '--type', 'pull.everything'], {
      EVENTS_ALLOW_PRIVATE_TARGETS: 'true',
    });
    expect(badType.code).toBe(2);
    expect(badType.err).toMatch(/unknown event type "pull.everything"/);
    expect(await query('SELECT 1 FROM webhook_subscriptions')).toEqual([]);
  });

  it('adds, lists, tests, shows deliveries and removes; CLI changes become events naming the CLI', async () => {
    const allow = { EVENTS_ALLOW_PRIVATE_TARGETS: 'true' };
    const added = await run(
      ['webhook', 'add', receiver.url, '--type', 'entitlement.*,member.*', '--format', 'json'],
      allow,
    );
    expect(added.code).toBe(0);
    const sub = JSON.parse(added.out) as { id: string; secret: string; eventTypes: string[] };
    expect(sub.eventTypes).toEqual(['entitlement.*', 'member.*']);
    expect(sub.secret).toMatch(/^whsec_/);
    receiver.secret = sub.secret;

    const list = await run(['webhook', 'list', '--format', 'json']);
    expect(list.out).not.toContain(sub.secret);
    expect(JSON.parse(list.out)).toEqual([
      expect.objectContaining({ id: sub.id, url: receiver.url, enabled: true }),
    ]);

    const test = await run(['webhook', 'test', sub.id], allow);
    expect(test).toMatchObject({ code: 0 });
    expect(test.out).toMatch(/^Delivered \(HTTP 204\)/);
    expect(receiver.received.map((r) => r.event.type)).toEqual(['webhook.test']);

    expect((await run(['member', 'create', 'carol'])).code).toBe(0);
    expect((await run(['grant', 'carol', 'acme/app', '--tags', 'v1.*'])).code).toBe(0);
    const events = await query<{ type: string; payload: { subject: string; data: Record<string, unknown> } }>(
      `SELECT type, payload FROM event_outbox ORDER BY created_at`,
    );
    expect(events.map((e) => e.type)).toEqual(['member.created', 'entitlement.granted']);
    expect(events[1].payload.subject).toBe('carol');
    expect(events[1].payload.data).toMatchObject({
      actor: 'cli',
      repository: 'acme/app',
      tagRules: ['v1.*'],
    });

    const deliveries = await run(['webhook', 'deliveries', sub.id]);
    expect(deliveries).toMatchObject({ code: 0, out: 'No deliveries.\n' });
    expect((await run(['webhook', 'deliveries', 'not-an-id'])).code).toBe(1);

    const removed = await run(['webhook', 'remove', sub.id]);
    expect(removed).toMatchObject({ code: 0 });
    expect(await query('SELECT 1 FROM webhook_subscriptions')).toEqual([]);
  });
});
