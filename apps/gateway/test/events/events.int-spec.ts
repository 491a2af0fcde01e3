import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { AuditService } from '@gatehouse/audit';
import { EventsWorker, WebhookSubscriptions, WebhookTargetError } from '@gatehouse/events';
import { startTestNats, startWebhookReceiver, TestNats, WebhookReceiver } from '@gatehouse/testing/events';
import { StackMember, startUpstreamGatewayStack, UpstreamGatewayStack } from '@gatehouse/testing/gateway';
import { ContainerToolsSandbox, createContainerToolsSandbox } from '@gatehouse/testing/upstream';

const ADMIN = 'E'.repeat(40);

/**
 * Events end to end: the real gateway over the seeded upstream, a webhook receiver verifying
 * every signature with the Standard Webhooks library, a real nats-server with JetStream, skopeo.
 */
describe('events: webhooks and JetStream', () => {
  let stack: UpstreamGatewayStack;
  let receiver: WebhookReceiver;
  let nats: TestNats;
  let tools: ContainerToolsSandbox;
  let who: StackMember;
  let subscriptionId: string;

  const admin = (path: string, init: { method?: string; body?: unknown } = {}) =>
    fetch(`${stack.gw.url}/admin${path}`, {
      method: init.method ?? 'GET',
      headers: {
        authorization: `Bearer ${ADMIN}`,
        ...(init.body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: init.body === undefined ? undefined : JSON.stringify(init.body),
    });

  const eventsOf = (type: string, username = who.username) =>
    receiver.received.filter((r) => r.event.type === type && r.event.subject === username);

  beforeAll(async () => {
    nats = await startTestNats();
    receiver = await startWebhookReceiver();
    stack = await startUpstreamGatewayStack({
      patLabel: 'events',
      gatewayEnv: { ADMIN_TOKEN: ADMIN, EVENTS_ALLOW_PRIVATE_TARGETS: 'true', EVENTS_NATS_URL: nats.url },
    });
    tools = await createContainerToolsSandbox();
    const res = await admin('/webhooks', { method: 'POST', body: { url: receiver.url, types: ['*'] } });
    expect(res.status).toBe(201);
    const created = (await res.json()) as { id: string; secret: string };
    receiver.secret = created.secret;
    subscriptionId = created.id;
    who = await stack.member('events', { 'acme/app': ['v1.0.0'] });
  });

  afterAll(async () => {
    await tools?.cleanup();
    await stack?.stop();
    await receiver?.stop();
    await nats?.stop();
  });

  it('a skopeo pull of a multi-platform image is exactly one pull.manifest, signed and verifiable', async () => {
    const dest = join(tools.dir, 'pulled');
    const r = await tools.skopeo([
      'copy',
      '--all',
      '--src-tls-verify=false',
      '--src-creds',
      `${who.username}:${who.key}`,
      `docker://${stack.gw.host}/acme/app:v1.0.0`,
      `oci:${dest}:v1.0.0`,
    ]);
    expect(r.code).toBe(0);
    await receiver.waitFor(() => eventsOf('pull.manifest').length >= 1);
    // Child manifests and blobs were fetched too; time enough for any stray event to arrive.
    await stack.gw.app.get(AuditService).flush(10_000);
    await new Promise((res) => setTimeout(res, 1500));
    const pulls = eventsOf('pull.manifest');
    expect(pulls).toHaveLength(1);
    const e = pulls[0].event;
    expect(e).toMatchObject({
      specversion: '1.0',
      type: 'pull.manifest',
      source: stack.gw.host,
      subject: who.username,
      data: { repository: 'acme/app', tag: 'v1.0.0', member: { username: who.username } },
    });
    expect(pulls[0].webhookId).toBe(e.id);
    expect(eventsOf('login.issued').length).toBeGreaterThanOrEqual(1);
    expect(receiver.rejected).toBe(0);
  });

  it('an unentitled tag is access.refused with the audit reason code', async () => {
    const token = await stack.token(who, ['repository:acme/app:pull']);
    const res = await fetch(`${stack.gw.url}/v2/acme/app/manifests/v1.1.0`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(res.status).toBe(404);
    const [refused] = await receiver
      .waitFor(() => eventsOf('access.refused').length >= 1)
      .then(() => eventsOf('access.refused'));
    expect(refused.event.data).toMatchObject({
      reason: 'tag_not_entitled',
      reference: 'v1.1.0',
      httpStatus: 404,
    });
  });

  it('a grant through the admin API is entitlement.granted naming the acting identity, with no secret', async () => {
    const res = await admin('/entitlements', {
      method: 'POST',
      body: { member: who.username, repository: 'acme/tool', tags: ['1.*'] },
    });
    expect(res.status).toBe(201);
    await receiver.waitFor(() => eventsOf('entitlement.granted').length >= 1);
    const [granted] = eventsOf('entitlement.granted');
    expect(granted.event.data).toMatchObject({
      repository: 'acme/tool',
      actor: 'admin_token',
      tagRules: ['1.*'],
    });
    const all = JSON.stringify(receiver.received);
    expect(all).not.toContain(who.key);
    expect(all).not.toContain(ADMIN);
    expect(all).not.toContain(stack.pat);
  });

  it('a JetStream consumer sees the same events, one message per event id', async () => {
    const ids = receiver.received.map((r) => r.event.id);
    const nc = await connect({ servers: nats.url });
    try {
      const jsm = await jetstreamManager(nc);
      const deadline = Date.now() + 20_000;
      while ((await jsm.streams.info('GATEHOUSE_EVENTS')).state.messages < ids.length) {
        if (Date.now() > deadline) throw new Error('JetStream did not get every event');
        await new Promise((r) => setTimeout(r, 100));
      }
      await jsm.consumers.add('GATEHOUSE_EVENTS', { durable_name: 'test', ack_policy: 'explicit' as never });
      const consumer = await jetstream(nc).consumers.get('GATEHOUSE_EVENTS', 'test');
      const seen = new Map<string, string>();
      const batch = await consumer.fetch({ max_messages: 1000, expires: 2000 });
      for await (const m of batch) {
        const ev = m.json<{ id: string; type: string }>();
        expect(m.subject).toBe(`gatehouse.events.${ev.type}`);
        expect(m.headers?.get('Nats-Msg-Id')).toBe(ev.id);
        expect(seen.has(ev.id)).toBe(false);
        seen.set(ev.id, ev.type);
        m.ack();
      }
      for (const id of ids) expect(seen.has(id)).toBe(true);
    } finally {
      await nc.close();
    }
  });

  it('receiver down for a while, then back: every event arrives, each under one id', async () => {
    const token = await stack.token(who, ['repository:acme/app:pull']);
    await receiver.down();
    const requestIds: string[] = [];
    for (let i = 0; i < 12; i++) {
      const res = await fetch(`${stack.gw.url}/v2/acme/app/manifests/refused-${i}`, {
        headers: { authorization: `Bearer ${token}` },
      });
      expect(res.status).toBe(404);
      requestIds.push(res.headers.get('x-request-id')!);
    }
    // The deliveries fail (connection refused) and wait for their retry.
    await new Promise((r) => setTimeout(r, 3000));
    const failing = (await (await admin(`/webhooks/${subscriptionId}/deliveries?status=pending`)).json()) as {
      items: Array<{ attempts: number; lastError: string | null }>;
    };
    expect(failing.items.length).toBeGreaterThanOrEqual(12);
    expect(failing.items.every((d) => d.attempts >= 1 && d.lastError)).toBe(true);
    await receiver.up();
    const ofThese = () =>
      receiver.received.filter((r) => requestIds.includes(String(r.event.data.requestId)));
    await receiver.waitFor(() => new Set(ofThese().map((r) => r.event.data.requestId)).size === 12, 60_000);
    const idsPerRequest = new Map<string, Set<string>>();
    for (const r of ofThese()) {
      const set = idsPerRequest.get(String(r.event.data.requestId)) ?? new Set<string>();
      set.add(r.event.id);
      idsPerRequest.set(String(r.event.data.requestId), set);
    }
    expect([...idsPerRequest.values()].map((s) => s.size)).toEqual(Array(12).fill(1));
  });

  it('lists deliveries, sends a test, and a 410 Gone disables the subscription with dead letters to redeliver', async () => {
    const gone = await startWebhookReceiver();
    try {
      const made = (await (
        await admin('/webhooks', {
          method: 'POST',
          body: { url: gone.url, types: ['access.refused'], member: who.username },
        })
      ).json()) as { id: string; secret: string };
      gone.secret = made.secret;
      const test = (await (await admin(`/webhooks/${made.id}/test`, { method: 'POST' })).json()) as {
        ok: boolean;
      };
      expect(test.ok).toBe(true);
      gone.answer = { status: 410 };
      const token = await stack.token(who, ['repository:acme/app:pull']);
      await fetch(`${stack.gw.url}/v2/acme/app/manifests/gone-1`, {
        headers: { authorization: `Bearer ${token}` },
      });
      const deadline = Date.now() + 30_000;
      let list: Array<{ id: string; enabled: boolean; disabledReason: string | null }> = [];
      for (;;) {
        list = ((await (await admin('/webhooks')).json()) as { items: typeof list }).items;
        if (!list.find((s) => s.id === made.id)!.enabled) break;
        if (Date.now() > deadline) throw new Error('the 410 did not disable the subscription');
        await new Promise((r) => setTimeout(r, 200));
      }
      expect(list.find((s) => s.id === made.id)!.disabledReason).toMatch(/410/);
      const dead = (await (await admin(`/webhooks/${made.id}/deliveries?status=dead`)).json()) as {
        items: Array<{ id: string; eventType: string; lastStatus: number }>;
      };
      expect(dead.items.map((d) => [d.eventType, d.lastStatus])).toEqual([['access.refused', 410]]);
      gone.answer = { status: 204 };
      expect((await admin(`/webhooks/${made.id}/enable`, { method: 'POST' })).status).toBe(200);
      const again = (await (
        await admin(`/webhooks/${made.id}/redeliver`, { method: 'POST', body: {} })
      ).json()) as {
        redelivered: number;
      };
      expect(again.redelivered).toBe(1);
      await gone.waitFor((r) => r.some((e) => e.event.type === 'access.refused'));
      expect((await admin(`/webhooks/${made.id}`, { method: 'DELETE' })).status).toBe(200);
      expect((await admin(`/webhooks/${made.id}/deliveries`)).status).toBe(404);
    } finally {
      await gone.stop();
    }
  });

  it('a receiver that never answers delays neither pulls nor another subscription', async () => {
    const slow = await startWebhookReceiver();
    const fast = await startWebhookReceiver();
    try {
      slow.answer = { status: 204, delayMs: 60_000 };
      for (const r of [slow, fast]) {
        const made = (await (
          await admin('/webhooks', { method: 'POST', body: { url: r.url, types: ['login.*'] } })
        ).json()) as { secret: string };
        r.secret = made.secret;
      }
      // Far more events than the slow receiver's share of the worker's connections.
      const started = Date.now();
      for (let i = 0; i < 40; i++) await stack.token(who, []);
      const tokenTime = Date.now() - started;
      await fast.waitFor((r) => r.filter((e) => e.event.type === 'login.issued').length >= 40, 20_000);
      expect(slow.received).toHaveLength(0);
      // Logins kept their pace: bounded loosely (a busy machine), far below one slow answer.
      expect(tokenTime).toBeLessThan(30_000);
    } finally {
      await slow.stop();
      await fast.stop();
    }
  });

  it('a HEAD-only pull is one pull.checked; a HEAD then GET (docker, containerd) is one pull.manifest only', async () => {
    const headOnly = await stack.member('head-only', { 'acme/app': ['*'] });
    const headThenGet = await stack.member('head-get', { 'acme/app': ['*'] });
    const accept = 'application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json';
    for (const m of [headOnly, headThenGet]) {
      const token = await stack.token(m, ['repository:acme/app:pull']);
      const headers = { authorization: `Bearer ${token}`, accept };
      const head = await fetch(`${stack.gw.url}/v2/acme/app/manifests/v1.0.0`, { method: 'HEAD', headers });
      expect(head.status).toBe(200);
      if (m === headThenGet) {
        const digest = head.headers.get('docker-content-digest')!;
        const get = await fetch(`${stack.gw.url}/v2/acme/app/manifests/${digest}`, { headers });
        expect(get.status).toBe(200);
        await get.arrayBuffer();
      }
    }
    // A pull.checked is held ~10 s for the GET that would make it part of a pull.
    await receiver.waitFor(() => eventsOf('pull.checked', headOnly.username).length === 1, 40_000);
    await receiver.waitFor(() => eventsOf('pull.manifest', headThenGet.username).length === 1, 40_000);
    await new Promise((r) => setTimeout(r, 12_000));
    expect(eventsOf('pull.manifest', headOnly.username)).toHaveLength(0);
    expect(eventsOf('pull.checked', headThenGet.username)).toHaveLength(0);
    expect(eventsOf('pull.manifest', headThenGet.username)).toHaveLength(1);
    expect(eventsOf('pull.checked', headOnly.username)[0].event.data).toMatchObject({ tag: 'v1.0.0' });
  });

  it('an entitlement expiring within EVENTS_EXPIRING_DAYS is one entitlement.expiring, however often scanned', async () => {
    const res = await admin('/entitlements', {
      method: 'POST',
      body: { member: who.username, repository: 'acme/big', tags: ['*'], expires: '2d' },
    });
    expect(res.status).toBe(201);
    const worker = stack.gw.app.get(EventsWorker, { strict: false });
    await worker.scanExpiring();
    await worker.scanExpiring();
    await receiver.waitFor(() =>
      eventsOf('entitlement.expiring').some((e) => e.event.data.repository === 'acme/big'),
    );
    await stack.gw.app.get(AuditService).flush(10_000);
    await new Promise((r) => setTimeout(r, 1000));
    const expiring = eventsOf('entitlement.expiring').filter((e) => e.event.data.repository === 'acme/big');
    expect(expiring).toHaveLength(1);
    expect(expiring[0].event.data).toMatchObject({ kind: 'entitlement', daysLeft: 2 });
  });

  it('counts events in /metrics and reports the outbox in /readyz', async () => {
    const metrics = await (await fetch(`${stack.gw.url}/metrics`)).text();
    expect(metrics).toMatch(/gatehouse_events_produced_total\{type="pull.manifest"\} [1-9]/);
    expect(metrics).toMatch(/gatehouse_events_delivered_total\{sink="webhook"\} [1-9]/);
    expect(metrics).toMatch(/gatehouse_events_delivered_total\{sink="nats"\} [1-9]/);
    expect(metrics).toMatch(/gatehouse_events_retried_total\{sink="webhook"\} [1-9]/);
    expect(metrics).toMatch(/gatehouse_events_dead_lettered_total\{sink="webhook"\} [1-9]/);
    const ready = (await (await fetch(`${stack.gw.url}/readyz`)).json()) as {
      info?: Record<string, { status: string; undispatchedSeconds: number }>;
      error?: Record<string, unknown>;
    };
    const row = ready.info?.eventsOutbox ?? ready.error?.eventsOutbox;
    expect(row).toMatchObject({ status: 'up' });
    expect(await (await fetch(`${stack.gw.url}/metrics`)).text()).toMatch(
      /gatehouse_events_outbox_oldest_age_seconds \d/,
    );
  });

  it('refuses a webhook on a private, loopback or link-local address unless allowed', async () => {
    const strict = new WebhookSubscriptions(stack.gw.app.get(DataSource), false);
    for (const url of [
      'http://127.0.0.1:9/x',
      'http://10.1.2.3/x',
      'http://169.254.169.254/latest',
      'http://[::1]/x',
      'http://localhost/x',
    ])
      await expect(strict.add({ url, eventTypes: ['*'], createdBy: 'test' })).rejects.toThrow(
        WebhookTargetError,
      );
    await expect(
      strict.add({ url: 'http://10.0.0.1/x', eventTypes: ['*'], createdBy: 'test' }),
    ).rejects.toThrow(/EVENTS_ALLOW_PRIVATE_TARGETS/);
  });
});
