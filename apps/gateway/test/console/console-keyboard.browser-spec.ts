import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { BuiltGateway, startBuiltGateway } from '@gatehouse/testing/gateway';
import { createTestDatabase, TestDatabase } from '@gatehouse/testing/postgres';
import { getFreePort } from '@gatehouse/testing/upstream';
import { launchChromium, seriousViolations } from './console-browser';

const ADMIN_TOKEN = 'console-keyboard-browser-admin-token-0123456789';
// The viewer is not in UTC, so a time shown in UTC would differ from the one expected.
const VIEWER_ZONE = 'America/New_York';

let db: TestDatabase;
let dataDir: string;
let gw: BuiltGateway;
let base: string;
let browser: Awaited<ReturnType<typeof launchChromium>>;
let page: Page;

/** The browser's document, as much of it as these checks read (the tests compile without the DOM types). */
type Doc = {
  document: { activeElement: { matches(s: string): boolean } | null };
  getComputedStyle(el: unknown): { outlineStyle: string };
};

/** Presses Tab until the focused element is `selector` (at most 30 times); fails when it never is. */
async function tabTo(selector: string): Promise<void> {
  for (let i = 0; i < 30; i++) {
    await page.keyboard.press('Tab');
    const focus = await page.evaluate((s) => {
      const g = globalThis as unknown as Doc;
      const el = g.document.activeElement;
      return el?.matches(s) ? g.getComputedStyle(el).outlineStyle : null;
    }, selector);
    if (focus !== null) {
      // Where the focus is shows: the stylesheet's focus ring.
      expect({ selector, outline: focus }).not.toEqual({ selector, outline: 'none' });
      return;
    }
  }
  throw new Error(`Tab never reached ${selector} on ${page.url()}`);
}

async function expectAccessible(): Promise<void> {
  expect({ url: page.url(), violations: await seriousViolations(page) }).toEqual({
    url: page.url(),
    violations: [],
  });
}

beforeAll(async () => {
  browser = await launchChromium({ timezoneId: VIEWER_ZONE });
  page = browser.context.pages()[0] ?? (await browser.context.newPage());
  db = await createTestDatabase();
  dataDir = mkdtempSync(join(tmpdir(), 'gatehouse-console-keyboard-'));
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
  });
  await gw.waitUntilHealthy(base, 120_000);
  const made = await fetch(`${base}/admin/members`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'kbd-member' }),
  });
  expect(made.status).toBe(201);
}, 300_000);

afterAll(async () => {
  await browser?.close();
  if (gw) {
    gw.child.kill('SIGTERM');
    await gw.exited;
  }
  await db?.drop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

describe('the console by keyboard alone, in the viewer’s time zone', () => {
  it('signs in, asks explain and moves between pages with Tab and Enter only', async () => {
    await page.goto(`${base}/console/login`);
    await tabTo('#token');
    await page.keyboard.type(ADMIN_TOKEN);
    await page.keyboard.press('Enter');
    await page.waitForURL(`${base}/console/explain`);

    await tabTo('#member');
    await page.keyboard.type('kbd-member');
    await tabTo('#image');
    await page.keyboard.type('acme/app:v1.0.0');
    await page.keyboard.press('Enter');
    await page.waitForURL((url) => url.href.includes('member=kbd-member'));
    await expect(page.locator('#verdict').textContent()).resolves.toContain('Not allowed: kbd-member');
    await expectAccessible();

    await tabTo('nav a[href="/console/members"]');
    await page.keyboard.press('Enter');
    await page.waitForURL(`${base}/console/members`);
    await tabTo('a[href="/console/members/kbd-member"]');
    await page.keyboard.press('Enter');
    await page.waitForURL(`${base}/console/members/kbd-member`);
    await expectAccessible();
  });

  it('shows times in the viewer’s zone, with the UTC time on hover', async () => {
    const shown = await page
      .locator('main time')
      .first()
      .evaluate((el) => ({
        text: el.textContent,
        title: el.getAttribute('title'),
        datetime: el.getAttribute('datetime')!,
      }));
    const expected = await page.evaluate(
      ({ at, zone }) => ({
        local: new Date(at).toLocaleString(),
        inZone: new Date(at).toLocaleString(undefined, { timeZone: zone }),
        utc: new Date(at).toLocaleString(undefined, { timeZone: 'UTC' }),
      }),
      { at: shown.datetime, zone: VIEWER_ZONE },
    );
    expect(expected.local).toBe(expected.inZone);
    expect(expected.local).not.toBe(expected.utc);
    expect(shown).toEqual({
      text: expected.local,
      title: `${shown.datetime} (UTC)`,
      datetime: shown.datetime,
    });
  });
});
