import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import type { Page } from 'playwright-core';
import { startWebhookReceiver, WebhookReceiver } from '@gatehouse/testing/events';
import { BuiltGateway, startBuiltGateway } from '@gatehouse/testing/gateway';
import { createTestDatabase, TestDatabase } from '@gatehouse/testing/postgres';
import { getFreePort } from '@gatehouse/testing/upstream';
import { eventually, launchChromium, seriousViolations } from './console-browser';

const ADMIN_TOKEN = 'console-webhooks-browser-admin-token-0123456789';
const EVIL = `<img src=x onerror="window.__xss=1">`;
const SCREENSHOTS = process.env.GATEHOUSE_CONSOLE_SCREENSHOTS;

let db: TestDatabase;
let dataDir: string;
let gw: BuiltGateway;
let base: string;
let receiver: WebhookReceiver;
let browser: Awaited<ReturnType<typeof launchChromium>>;
let page: Page;

async function shot(name: string): Promise<void> {
  if (SCREENSHOTS) await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });
}

async function expectAccessible(): Promise<void> {
  expect({ url: page.url(), violations: await seriousViolations(page) }).toEqual({
    url: page.url(),
    violations: [],
  });
}

async function sql<T>(text: string, values: unknown[] = []): Promise<T[]> {
  const c = new Client({ connectionString: db.url });
  await c.connect();
  try {
    return (await c.query(text, values)).rows as T[];
  } finally {
    await c.end();
  }
}

beforeAll(async () => {
  browser = await launchChromium();
  page = browser.context.pages()[0] ?? (await browser.context.newPage());
  receiver = await startWebhookReceiver();
  db = await createTestDatabase();
  dataDir = mkdtempSync(join(tmpdir(), 'gatehouse-console-webhooks-'));
  const port = await getFreePort();
  base = `http://127.0.0.1:${port}`;
  gw = startBuiltGateway({
    PORT: String(port),
    HOST: '127.0.0.1',
    DATA_DIR: dataDir,
    DATABASE_URL: db.url,
    OCI_REGISTRY_SERVICE: `127.0.0.1:${port}`,
    OCI_REGISTRY_REALM: `${base}/auth/token`,
    ADMIN_TOKEN,
    // The receiver listens on loopback.
    EVENTS_ALLOW_PRIVATE_TARGETS: 'true',
  });
  await gw.waitUntilHealthy(base, 120_000);
}, 300_000);

afterAll(async () => {
  await browser?.close();
  if (gw) {
    gw.child.kill('SIGTERM');
    await gw.exited;
  }
  await receiver?.stop();
  await db?.drop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

describe('the console webhooks page in Chromium against the built gateway', () => {
  let hookUrl: string;

  it('an admin adds a subscription from the nav and copies its secret, shown once', async () => {
    await page.goto(`${base}/console/login`);
    await page.getByLabel('Admin token').fill(ADMIN_TOKEN);
    await page.getByRole('button', { name: 'Sign in with the admin token' }).click();
    await page.getByRole('navigation', { name: 'Console' }).getByRole('link', { name: 'Webhooks' }).click();
    await page.waitForURL(`${base}/console/webhooks`);
    await expect(page.locator('.empty').first().textContent()).resolves.toContain('No webhook subscriptions');
    await expectAccessible();

    await page.getByLabel('Receiver URL').fill('ftp://example.com/hooks');
    await page.getByLabel(/Event types/).fill('pull.manifest, member.*');
    await page.getByLabel(/Description/).fill(EVIL);
    await page.getByRole('button', { name: 'Add subscription' }).click();
    await expect(page.getByRole('alert').textContent()).resolves.toContain('http:// or https://');
    await expect(page.getByLabel(/Description/).inputValue()).resolves.toBe(EVIL);
    await expectAccessible();

    await page.getByLabel('Receiver URL').fill(receiver.url);
    await page.getByRole('button', { name: 'Add subscription' }).click();
    await page.waitForURL(`${base}/console/webhooks`);
    const secret = await page.getByLabel('Webhook signing secret').inputValue();
    expect(secret).toMatch(/^whsec_/);
    receiver.secret = secret;
    await page.getByRole('button', { name: 'Copy' }).click();
    // The button's new label follows the clipboard's answer, which is asynchronous.
    await page.getByRole('button', { name: /Copied|Ctrl\+C/ }).waitFor({ timeout: 10_000 });
    await expectAccessible();
    await shot('webhook-secret');
    hookUrl = (await page.getByRole('link', { name: /Back to the subscription/ }).getAttribute('href'))!;
    await page.goto(`${base}/console/webhooks`);
    await expect(page.locator('table').textContent()).resolves.toContain(receiver.url);
    await expect(page.content()).resolves.not.toContain(secret);
    expect(await page.evaluate(() => (globalThis as { __xss?: number }).__xss)).toBeUndefined();
  });

  it('sends a test event, and redelivers a dead letter with the same event id', async () => {
    await page.goto(`${base}${hookUrl}`);
    await page.getByRole('button', { name: 'Send a test event' }).click();
    await expect(page.getByRole('status').textContent()).resolves.toContain('answered HTTP 204');
    await receiver.waitFor((r) => r.some((e) => e.event.type === 'webhook.test'));
    await expectAccessible();

    // A member created through the admin API: a member.created event for this subscription.
    const created = await fetch(`${base}/admin/members`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'hooked' }),
    });
    expect(created.status).toBe(201);
    await receiver.waitFor((r) => r.some((e) => e.event.type === 'member.created'));
    // As the worker leaves a delivery after a day of refused connections.
    let dead: Array<{ event_id: string }> = [];
    for (let i = 0; i < 50 && dead.length === 0; i++) {
      dead = await sql<{ event_id: string }>(
        `UPDATE webhook_deliveries SET status = 'dead', attempts = 17, last_status = NULL,
           last_error = 'connect ECONNREFUSED 127.0.0.1' WHERE status = 'delivered' RETURNING event_id`,
      );
      if (dead.length === 0) await new Promise((r) => setTimeout(r, 100));
    }
    expect(dead).toHaveLength(1);
    // The test's answer page was a POST: open the subscription afresh.
    await page.goto(`${base}${hookUrl}`);
    await expect(page.locator('#dead + table').textContent()).resolves.toContain('connect ECONNREFUSED');
    await expectAccessible();
    await shot('webhook');
    const before = receiver.received.filter((r) => r.event.id === dead[0].event_id).length;
    await page.locator('#dead + table').getByRole('button', { name: 'Redeliver' }).click();
    await page.waitForURL(`${base}${hookUrl}`);
    await receiver.waitFor((r) => r.filter((e) => e.event.id === dead[0].event_id).length > before);
    await page.reload();
    await expect(page.locator('#dead + p.empty').textContent()).resolves.toContain('No dead letters');
  });

  it('removes the subscription after a confirmation', async () => {
    await page.goto(`${base}/console/webhooks`);
    await expectAccessible();
    await shot('webhooks');
    await page.goto(`${base}${hookUrl}`);
    await page.getByRole('link', { name: 'Remove…' }).click();
    await expectAccessible();
    await page.getByRole('button', { name: 'Remove the subscription' }).click();
    await page.waitForURL(`${base}/console/webhooks`);
    await expect(page.locator('.empty').first().textContent()).resolves.toContain('No webhook subscriptions');
    const audit = await eventually(
      () =>
        sql<{ action: string }>(
          `SELECT action FROM audit_events WHERE action LIKE 'admin.webhook.%' ORDER BY occurred_at`,
        ),
      (rows) => rows.some((r) => r.action === 'admin.webhook.remove'),
    );
    expect(audit.map((a) => a.action)).toEqual(
      expect.arrayContaining([
        'admin.webhook.add',
        'admin.webhook.test',
        'admin.webhook.redeliver',
        'admin.webhook.remove',
      ]),
    );
  });
});
