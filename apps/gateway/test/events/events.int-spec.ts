import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { AuditService } from '@gatehouse/audit';
import { WebhookSubscriptions, WebhookTargetError } from '@gatehouse/events';
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

  const admin = (path: string, init: { method?: string; body?: unknown } = {}) =>
    fetch(`${stack.gw.url}/admin${path}`, {
      method: init.method ?? 'GET',
      headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
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
    const { secret } = await stack.gw.app
      .get(WebhookSubscriptions)
      .add({ url: receiver.url, eventTypes: ['*'], createdBy: 'test' });
    receiver.secret = secret;
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
