import { DataSource } from 'typeorm';
import { AuditService } from '@gatehouse/audit';
import { createTestGateway, TestGateway } from '@gatehouse/testing/gateway';
import { startWebhookReceiver, WebhookReceiver } from '@gatehouse/testing/events';
import { ConsoleSessionStore } from './console-session.store';

const ADMIN_TOKEN = 'console-webhooks-spec-admin-token-0123456789';
const EVIL = `<img src=x onerror="window.__xss=1">`;

interface Signed {
  cookie: string;
  csrf: string;
}

/**
 * The console's webhooks page on a real gateway, PostgreSQL and a receiver that verifies every
 * signature with the Standard Webhooks library: admins (ADMIN_TOKEN sign-in) add, test, rotate,
 * redeliver and remove; support staff read and get 403 on every write; each write is an
 * `admin.webhook.*` audit row with the staff identity.
 */
describe('console webhooks page', () => {
  let gw: TestGateway;
  let receiver: WebhookReceiver;
  let admin: Signed;
  let support: Signed;
  let id: string;

  const page = async (path: string, who: Signed) => {
    const res = await fetch(`${gw.url}${path}`, { headers: { cookie: who.cookie }, redirect: 'manual' });
    return { status: res.status, html: await res.text() };
  };
  const post = async (path: string, who: Signed, form: Record<string, string> = {}, headers = {}) => {
    const res = await fetch(`${gw.url}${path}`, {
      method: 'POST',
      redirect: 'manual',
      headers: {
        cookie: who.cookie,
        'content-type': 'application/x-www-form-urlencoded',
        'sec-fetch-site': 'same-origin',
        ...headers,
      },
      body: new URLSearchParams({ _csrf: who.csrf, ...form }).toString(),
    });
    return { status: res.status, location: res.headers.get('location'), html: await res.text() };
  };
  const secretOf = (html: string) => /id="webhook-secret"[^>]*value="(whsec_[^"]+)"/.exec(html)?.[1];
  const auditRows = async (action: string) => {
    await gw.app.get(AuditService).flush();
    return (await gw.app
      .get(DataSource)
      .query(`SELECT outcome, details FROM audit_events WHERE action = $1 ORDER BY occurred_at`, [
        action,
      ])) as Array<{ outcome: string; details: Record<string, unknown> & { staff?: { name: string } } }>;
  };

  beforeAll(async () => {
    receiver = await startWebhookReceiver();
    gw = await createTestGateway({ env: { ADMIN_TOKEN, EVENTS_ALLOW_PRIVATE_TARGETS: 'true' } });
    const signIn = await fetch(`${gw.url}/console/login/token`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'sec-fetch-site': 'same-origin' },
      body: new URLSearchParams({ token: ADMIN_TOKEN }).toString(),
    });
    const adminCookie = signIn.headers.get('set-cookie')!.split(';')[0];
    const sessions = gw.app.get(ConsoleSessionStore);
    const adminSession = await sessions.touch(adminCookie.split('=')[1]);
    admin = { cookie: adminCookie, csrf: adminSession!.csrfToken };
    // Support staff as the provider sign-in makes them (the browser tier signs in through OIDC).
    const supportId = await sessions.create({
      issuer: 'https://idp.example',
      subject: 'support-1',
      name: 'Sam Support',
      role: 'support',
    });
    support = {
      cookie: `gatehouse_console=${supportId}`,
      csrf: (await sessions.touch(supportId))!.csrfToken,
    };
  });

  afterAll(async () => {
    await gw?.close();
    await receiver?.stop();
  });

  it('links the page from every console page and starts empty', async () => {
    for (const path of ['/console/members', '/console/health', '/console/audit']) {
      expect((await page(path, support)).html).toContain('<a href="/console/webhooks">Webhooks</a>');
    }
    const list = await page('/console/webhooks', admin);
    expect(list.status).toBe(200);
    expect(list.html).toContain('No webhook subscriptions');
    expect(list.html).toContain('aria-current="page">Webhooks');
  });

  it('refuses a bad URL or event type with the form kept, escaped', async () => {
    const bad = await post('/console/webhooks', admin, { url: 'ftp://example.com/x', description: EVIL });
    expect(bad.status).toBe(400);
    expect(bad.html).toContain('role="alert"');
    expect(bad.html).not.toContain(EVIL);
    expect(bad.html).toContain('value="&#60;img src=x onerror=&#34;window.__xss=1&#34;&#62;"');
    const type = await post('/console/webhooks', admin, { url: receiver.url, types: 'pull.nothing' });
    expect(type.status).toBe(400);
    expect(type.html).toContain('unknown event type');
    expect(await auditRows('admin.webhook.add')).toEqual([]);
  });

  it('adds a subscription: the secret is shown once, the add is audited with the staff identity', async () => {
    const added = await post('/console/webhooks', admin, {
      url: receiver.url,
      types: 'member.*',
      description: EVIL,
    });
    expect(added.status).toBe(201);
    const secret = secretOf(added.html);
    expect(secret).toMatch(/^whsec_/);
    expect(added.html).toContain('data-copy="webhook-secret"');
    receiver.secret = secret!;
    id = /href="\/console\/webhooks\/([0-9a-f-]{36})"/.exec(added.html)![1];
    const list = await page('/console/webhooks', support);
    expect(list.html).toContain(receiver.url);
    expect(list.html).toContain('<code>member.*</code>');
    expect(list.html).not.toContain(EVIL);
    expect(list.html).not.toContain(secret);
    expect((await page(`/console/webhooks/${id}`, support)).html).not.toContain(secret);
    const [row] = await auditRows('admin.webhook.add');
    expect(row.details).toMatchObject({ actor: 'console', webhookId: id, url: receiver.url });
    expect(row.details.staff).toMatchObject({ name: 'admin token', role: 'admin' });
  });

  it('sends a signed test event the receiver verifies, and shows real deliveries', async () => {
    const test = await post(`/console/webhooks/${id}/test`, admin);
    expect(test.status).toBe(200);
    expect(test.html).toContain('The receiver answered HTTP 204');
    await receiver.waitFor((r) => r.some((e) => e.event.type === 'webhook.test'));
    expect((await auditRows('admin.webhook.test'))[0].details).toMatchObject({ webhookId: id, answer: 204 });
    // A change through the console becomes a member.created event, delivered to the receiver.
    expect((await post('/console/members', admin, { username: 'hooked-member' })).status).toBe(303);
    await receiver.waitFor((r) => r.some((e) => e.event.type === 'member.created'));
    let show = await page(`/console/webhooks/${id}`, support);
    for (let i = 0; i < 50 && !show.html.includes('<td>delivered</td>'); i++) {
      await new Promise((r) => setTimeout(r, 100));
      show = await page(`/console/webhooks/${id}`, support);
    }
    expect(show.html).toContain('<code>member.created</code>');
    expect(show.html).toContain('<td>delivered</td>');
    expect(show.html).toContain('No dead letters.');
  });

  it('lists a dead letter and redelivers it with the same event id', async () => {
    const db = gw.app.get(DataSource);
    // As the worker leaves a delivery after a day of refused connections.
    const [[dead]] = (await db.query(
      `UPDATE webhook_deliveries SET status = 'dead', attempts = 17, last_status = NULL,
         last_error = 'connect ECONNREFUSED' WHERE subscription_id = $1 RETURNING id, event_id`,
      [id],
    )) as [Array<{ id: string; event_id: string }>, number];
    const show = await page(`/console/webhooks/${id}`, admin);
    expect(show.html).toContain('1 dead letter');
    expect(show.html).toContain('connect ECONNREFUSED');
    expect(show.html).toContain(`name="delivery" value="${dead.id}"`);
    // Support sees the dead letter but no button.
    expect((await page(`/console/webhooks/${id}`, support)).html).not.toContain('name="delivery"');
    // A delivery id under another subscription's URL is not found.
    const other = await post('/console/webhooks', admin, { url: `${receiver.url}/other` });
    const otherId = /href="\/console\/webhooks\/([0-9a-f-]{36})"/.exec(other.html)![1];
    expect((await post(`/console/webhooks/${otherId}/redeliver`, admin, { delivery: dead.id })).status).toBe(
      404,
    );
    const before = receiver.received.filter((r) => r.event.id === dead.event_id).length;
    const again = await post(`/console/webhooks/${id}/redeliver`, admin, { delivery: dead.id });
    expect(again).toMatchObject({ status: 303, location: `/console/webhooks/${id}` });
    await receiver.waitFor((r) => r.filter((e) => e.event.id === dead.event_id).length > before);
    const rows = await auditRows('admin.webhook.redeliver');
    expect(rows.map((r) => r.details)).toEqual([
      expect.objectContaining({ webhookId: id, redelivered: 1, deliveryId: dead.id }),
    ]);
  });

  it('rotates the secret: shown once, and the next test verifies with the new one', async () => {
    const rotated = await post(`/console/webhooks/${id}/rotate-secret`, admin);
    expect(rotated.status).toBe(200);
    const secret = secretOf(rotated.html)!;
    expect(secret).toMatch(/^whsec_/);
    expect(secret).not.toBe(receiver.secret);
    receiver.secret = secret;
    const tests = receiver.received.filter((r) => r.event.type === 'webhook.test').length;
    expect((await post(`/console/webhooks/${id}/test`, admin)).html).toContain('answered HTTP 204');
    await receiver.waitFor((r) => r.filter((e) => e.event.type === 'webhook.test').length > tests);
    expect((await auditRows('admin.webhook.rotate_secret'))[0].details).toMatchObject({
      webhookId: id,
      staff: expect.objectContaining({ role: 'admin' }),
    });
  });

  it('support staff read every page, see no write control, and get 403 on every write', async () => {
    const list = await page('/console/webhooks', support);
    expect(list.status).toBe(200);
    expect(list.html).not.toContain('Add subscription');
    const show = await page(`/console/webhooks/${id}`, support);
    expect(show.status).toBe(200);
    expect(show.html).not.toMatch(/Send a test event|Rotate the secret|Remove…/);
    for (const path of ['', `/${id}/test`, `/${id}/rotate-secret`, `/${id}/redeliver`, `/${id}/remove`]) {
      expect((await post(`/console/webhooks${path}`, support, { url: receiver.url })).status).toBe(403);
    }
    expect((await page(`/console/webhooks/${id}/remove`, support)).status).toBe(403);
    expect(await auditRows('admin.webhook.remove')).toEqual([]);
  });

  it('refuses a write without the CSRF token or from another site', async () => {
    expect((await post(`/console/webhooks/${id}/rotate-secret`, { ...admin, csrf: 'guess' })).status).toBe(
      403,
    );
    const crossSite = await post(
      `/console/webhooks/${id}/rotate-secret`,
      admin,
      {},
      { 'sec-fetch-site': 'cross-site' },
    );
    expect(crossSite.status).toBe(403);
    expect(await auditRows('admin.webhook.rotate_secret')).toHaveLength(1);
  });

  it('answers 404 for an unknown subscription, and removes one after a confirmation', async () => {
    expect((await page('/console/webhooks/00000000-0000-4000-8000-000000000000', admin)).status).toBe(404);
    expect((await page('/console/webhooks/not-a-uuid', admin)).status).toBe(404);
    const confirm = await page(`/console/webhooks/${id}/remove`, admin);
    expect(confirm.html).toContain('Remove the subscription');
    const removed = await post(`/console/webhooks/${id}/remove`, admin);
    expect(removed).toMatchObject({ status: 303, location: '/console/webhooks' });
    expect((await page(`/console/webhooks/${id}`, admin)).status).toBe(404);
    expect((await page('/console/webhooks', admin)).html).not.toContain(`/console/webhooks/${id}"`);
    const [row] = await auditRows('admin.webhook.remove');
    expect(row.details).toMatchObject({
      webhookId: id,
      url: receiver.url,
      staff: expect.objectContaining({ role: 'admin' }),
    });
  });
});
