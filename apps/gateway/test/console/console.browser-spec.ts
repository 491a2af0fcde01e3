import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'csv-parse/sync';
import type { BrowserContext, Page } from 'playwright-core';
import { startUpstreamGatewayStack, UpstreamGatewayStack } from '@gatehouse/testing/gateway';
import { BuiltGateway, startBuiltGateway } from '@gatehouse/testing/gateway';
import { getFreePort, seedDownloads } from '@gatehouse/testing/upstream';
import { eventually, launchChromium, seriousViolations, startOidcProvider } from './console-browser';

const ADMIN_TOKEN = 'console-browser-tier-admin-token-0123456789';
const CLIENT_ID = 'gatehouse-console';
const CLIENT_SECRET = 'console-client-secret-0123456789';
// A user agent that is markup and a spreadsheet formula at once.
const EVIL_UA = `=HYPERLINK("http://evil")<script>window.__xss=1</script><img src=x onerror="window.__xss=1">`;
const EVIL_USERNAME = `<img src=x onerror="window.__xss=1">`;
const EVIL_REFERENCE = `<svg onload="window.__xss=1">`;
const SCREENSHOTS = process.env.GATEHOUSE_CONSOLE_SCREENSHOTS;
// Groups the provider gives by login name, read at each sign-in.
const GROUPS_FILE = join(mkdtempSync(join(tmpdir(), 'gatehouse-oidc-groups-')), 'groups.json');

let stack: UpstreamGatewayStack;
let gw: BuiltGateway;
let base: string;
let host: string;
let oidc: Awaited<ReturnType<typeof startOidcProvider>>;
let browser: Awaited<ReturnType<typeof launchChromium>>;
let context: BrowserContext;
let page: Page;
let attacker: Server;
let attackerUrl: string;
const dialogs: string[] = [];
let customer: { username: string; basic: string };

/** A pull through the built gateway: token, then the manifest; the answer's status and request id. */
async function pull(
  tag: string,
  userAgent = 'console-test/1.0',
): Promise<{ status: number; requestId: string }> {
  const qs = new URLSearchParams({ service: host, scope: 'repository:acme/app:pull' });
  const t = await fetch(`${base}/auth/token?${qs}`, { headers: { authorization: customer.basic } });
  const { token } = (await t.json()) as { token: string };
  const r = await fetch(`${base}/v2/acme/app/manifests/${tag}`, {
    headers: {
      authorization: `Bearer ${token}`,
      'user-agent': userAgent,
      accept: 'application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json',
    },
  });
  await r.arrayBuffer();
  return { status: r.status, requestId: r.headers.get('x-request-id') ?? '' };
}

async function shot(name: string): Promise<void> {
  if (SCREENSHOTS) await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`) });
}

async function expectAccessible(): Promise<void> {
  expect({ url: page.url(), violations: await seriousViolations(page) }).toEqual({
    url: page.url(),
    violations: [],
  });
}

async function signInWithProvider(login: string, landsOn = '/console/explain'): Promise<void> {
  // A new staff member at the provider: forget its session (cookies do not tell ports apart).
  await context.clearCookies();
  await page.goto(`${base}/console/`);
  expect(page.url()).toContain('/console/login');
  await page.getByRole('link', { name: 'Sign in with your company account' }).click();
  await page.locator('input[name="login"]').fill(login);
  await page.locator('input[name="password"]').fill('any');
  await page.locator('button[type="submit"]').click();
  // The provider asks for consent the first time.
  if (!page.url().startsWith(base)) await page.locator('button[type="submit"]').click();
  await page.waitForURL((url) => url.href.startsWith(`${base}${landsOn}`));
}

async function csrfToken(): Promise<string> {
  return page.locator('form.signout input[name="_csrf"]').inputValue();
}

async function signOut(): Promise<void> {
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.waitForURL(`${base}/console/login`);
}

beforeAll(async () => {
  browser = await launchChromium();
  context = browser.context;
  page = context.pages()[0] ?? (await context.newPage());
  page.on('dialog', (d) => {
    dialogs.push(d.message());
    void d.dismiss();
  });

  stack = await startUpstreamGatewayStack({ gatewayEnv: { ADMIN_TOKEN } });
  // Releases and generic packages for the rule previews of those kinds.
  stack.front.setTokenScopes(stack.pat, ['read:package', 'read:repository']);
  seedDownloads(stack.front);
  const port = await getFreePort();
  host = `127.0.0.1:${port}`;
  base = `http://${host}`;
  oidc = await startOidcProvider(
    await getFreePort(),
    CLIENT_ID,
    CLIENT_SECRET,
    `${base}/console/oidc/callback`,
    GROUPS_FILE,
  );
  gw = startBuiltGateway({
    ...stack.upstreamEnv(),
    PORT: String(port),
    HOST: '127.0.0.1',
    // A replica of the stack's gateway: same database and secrets, its own cache.
    DATA_DIR: stack.gw.dataDir,
    OCI_CACHE_DIR: mkdtempSync(join(tmpdir(), 'gatehouse-console-cache-')),
    DATABASE_URL: stack.gw.databaseUrl,
    OCI_REGISTRY_SERVICE: host,
    OCI_REGISTRY_REALM: `${base}/auth/token`,
    ADMIN_TOKEN,
    CONSOLE_OIDC_ISSUER: oidc.issuer,
    CONSOLE_OIDC_CLIENT_ID: CLIENT_ID,
    CONSOLE_OIDC_CLIENT_SECRET: CLIENT_SECRET,
    CONSOLE_OIDC_REDIRECT_URL: `${base}/console/oidc/callback`,
    CONSOLE_ROLE_GROUPS: 'admin=ops-admins;support=support-team',
  });
  await gw.waitUntilHealthy(base, 120_000);

  customer = await stack.member('cust', { 'acme/app': ['v1.0.0'] });

  // Another site (localhost is not 127.0.0.1) with a form that posts to the console.
  attacker = createServer((_req, res) => {
    res.setHeader('content-type', 'text/html');
    res.end(`<!doctype html><html lang="en"><title>evil</title><form id="f" method="post"
      action="${base}/console/members/${customer.username}/disable"><input name="_csrf" value="guess"></form>
      <script>document.getElementById('f').submit()</script></html>`);
  });
  await new Promise<void>((r) => attacker.listen(0, '127.0.0.1', r));
  attackerUrl = `http://localhost:${(attacker.address() as { port: number }).port}/`;
}, 300_000);

afterAll(async () => {
  await browser?.close();
  attacker?.close();
  if (gw) {
    gw.child.kill('SIGTERM');
    await gw.exited;
  }
  await oidc?.stop();
  await stack?.stop();
});

describe('the support console in Chromium against the built gateway', () => {
  it('signs support staff in through the OpenID provider; support reads but cannot write', async () => {
    await signInWithProvider('sam-support');
    const nav = page.getByRole('navigation', { name: 'Console' });
    // The provider's display name carries markup: shown as text.
    await expect(nav.textContent()).resolves.toContain('sam-support<img src=x onerror=alert(1)>');
    await expect(nav.textContent()).resolves.toContain('(support)');
    await expectAccessible();
    await shot('explain');

    await page.goto(`${base}/console/members/${customer.username}`);
    await expect(page.getByRole('heading', { name: `Member ${customer.username}` }).count()).resolves.toBe(1);
    await expect(page.getByRole('button', { name: 'Create key' }).count()).resolves.toBe(0);
    await expect(page.getByRole('button', { name: /Disable member/ }).count()).resolves.toBe(0);
    const csrf = await csrfToken();
    const refused = await page.request.post(`${base}/console/members/${customer.username}/keys`, {
      form: { _csrf: csrf, name: 'sneaky' },
      headers: { accept: 'application/json' },
    });
    expect(refused.status()).toBe(403);
    await expectAccessible();
    await signOut();
  });

  it('refuses a provider account in no mapped group', async () => {
    await signInWithProvider('sally-sales', '/console/oidc/callback');
    await expect(page.locator('.error').textContent()).resolves.toContain('no group');
    expect(page.url()).toContain('/console/oidc/callback');
  });

  it('applies a role change at the provider at the next sign-in, to the same (issuer, subject)', async () => {
    const nav = page.getByRole('navigation', { name: 'Console' });
    writeFileSync(GROUPS_FILE, JSON.stringify({ rita: ['support-team'] }));
    await signInWithProvider('rita');
    await expect(nav.textContent()).resolves.toContain('(support)');
    await signOut();
    writeFileSync(GROUPS_FILE, JSON.stringify({ rita: ['ops-admins'] }));
    await signInWithProvider('rita');
    await expect(nav.textContent()).resolves.toContain('(admin)');
    await signOut();
    const signIns = await eventually(
      async () =>
        (
          (await fetch(`${base}/admin/audit?action=console.signin&limit=1000`, {
            headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
          }).then((r) => r.json())) as { items: Array<{ details: { staff?: Record<string, string> } }> }
        ).items
          .map((e) => e.details.staff)
          .filter((s) => s?.subject === 'rita'),
      (found) => found.length === 2,
    );
    expect(signIns).toEqual([
      expect.objectContaining({ issuer: oidc.issuer, subject: 'rita', role: 'admin' }),
      expect.objectContaining({ issuer: oidc.issuer, subject: 'rita', role: 'support' }),
    ]);
  });

  it('explains a refused pull from a pasted request id and fixes it with a previewed grant', async () => {
    const refused = await pull('v1.1.0');
    expect(refused.status).toBeGreaterThanOrEqual(400);
    expect(refused.requestId).toMatch(/^[0-9a-f-]{36}$/);
    await signInWithProvider('ada-admin');
    await expect(page.getByRole('navigation', { name: 'Console' }).textContent()).resolves.toContain(
      '(admin)',
    );
    // Let the batched audit writer store the refusal.
    const stored = await eventually(
      async () =>
        (
          (await fetch(`${base}/admin/audit?requestId=${refused.requestId}`, {
            headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
          }).then((r) => r.json())) as { items: unknown[] }
        ).items.length,
      (n) => n > 0,
    );
    expect(stored).toBeGreaterThan(0);
    await page
      .getByLabel('Request id or error text')
      .fill(
        `Error response from daemon: denied: requested access to the resource is denied (request id ${refused.requestId})`,
      );
    await page.getByRole('button', { name: 'Explain' }).click();
    const verdict = page.locator('#verdict');
    await expect(verdict.textContent()).resolves.toContain('Not allowed');
    await expect(verdict.textContent()).resolves.toContain('tag_not_entitled');
    // The checks in order, ending with the two the gateway makes live.
    const checks = await page.locator('ol.checks li strong').allTextContents();
    expect(checks).toEqual(['member', 'access_keys', 'entitlement', 'rate_limit', 'upstream']);
    await expectAccessible();
    await shot('explain-verdict');
    await page.getByRole('link', { name: 'Preview the grant that fixes it' }).click();
    await expect(page.locator('#preview').count()).resolves.toBe(1);
    const admitted = await page.locator('#preview + p').textContent();
    expect(admitted).toMatch(/1 of \d+ upstream tags admitted now/);
    await expect(page.locator('section.card').textContent()).resolves.toContain('No longer admitted');
    await expectAccessible();
    await shot('grant-preview');
    await page.getByRole('button', { name: /^Replace the grant acme\/app/ }).click();
    await page.waitForURL(`${base}/console/members/${customer.username}`);
    await expect(page.locator('table').nth(1).textContent()).resolves.toContain('v1.1.0');
    const allowed = await pull('v1.1.0');
    expect(allowed.status).toBe(200);
  });

  it('previews release and package rules: the published tags and versions they admit', async () => {
    const previewOf = async (repository: string, tags: string) => {
      const q = new URLSearchParams({ member: customer.username, repository, tags });
      await page.goto(`${base}/console/grant?${q}`);
      await expect(page.locator('#preview').textContent()).resolves.toBe(
        `What ${customer.username} could download`,
      );
      await expectAccessible();
      return page.locator('section.card ul.tags').first().locator('li').allTextContents();
    };
    await expect(previewOf('packages:acme/cli', '1.4.*')).resolves.toEqual(['1.4.0']);
    await expect(page.locator('#preview + p').textContent()).resolves.toBe(
      '1 of 2 published versions admitted now.',
    );
    await expect(previewOf('releases:acme/tool', 'semver:^1.0.0')).resolves.toEqual(['v1.2.0', 'v1.0.0']);
    await expect(page.locator('#preview + p').textContent()).resolves.toBe(
      '2 of 4 published releases admitted now.',
    );
  });

  it('creates an access key, shows its secret once, and revokes it after a confirmation', async () => {
    await page.goto(`${base}/console/members/${customer.username}`);
    await page.getByLabel('Name').fill('laptop');
    await page.getByRole('button', { name: 'Create key' }).click();
    const secret = await page.getByLabel('Access key secret').inputValue();
    expect(secret.length).toBeGreaterThan(20);
    await expectAccessible();
    await shot('key-created');
    await page.goto(`${base}/console/members/${customer.username}`);
    await expect(page.content()).resolves.not.toContain(secret);
    await expectAccessible();
    await shot('member');
    const row = page.locator('tr', { hasText: 'laptop' });
    await row.getByRole('link', { name: 'Revoke…' }).click();
    await expectAccessible();
    await page.getByRole('button', { name: 'Revoke the key' }).click();
    await page.waitForURL(`${base}/console/members/${customer.username}`);
    await expect(page.locator('tr', { hasText: 'laptop' }).textContent()).resolves.toContain('revoked');
    const login = await fetch(`${base}/auth/token?service=${host}`, {
      headers: { authorization: 'Basic ' + Buffer.from(`${customer.username}:${secret}`).toString('base64') },
    });
    expect(login.status).toBe(401);
    // Both changes are audit rows naming the staff member who made them.
    for (const action of ['admin.key.create', 'admin.key.revoke']) {
      const items = await eventually(
        async () =>
          (
            (await fetch(`${base}/admin/audit?member=${customer.username}&action=${action}`, {
              headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
            }).then((r) => r.json())) as { items: Array<{ details: Record<string, unknown> }> }
          ).items,
        (found) => found.length > 0,
      );
      expect({ action, details: items[0]?.details }).toMatchObject({
        action,
        details: { actor: 'console', staff: { issuer: oidc.issuer, subject: 'ada-admin', role: 'admin' } },
      });
    }
  });

  it('filters the audit, exports the neutralised CSV, and shows hostile text as text', async () => {
    await pull('v2.0.0-rc.1', EVIL_UA);
    await fetch(`${base}/auth/token?service=${host}`, {
      headers: { authorization: 'Basic ' + Buffer.from(`${EVIL_USERNAME}:wrong`).toString('base64') },
    });
    await page.goto(`${base}/console/audit?member=${customer.username}&outcome=denied`);
    const uaRows = await eventually(
      async () => {
        await page.reload();
        return page.locator('td.ua', { hasText: 'HYPERLINK' }).count();
      },
      (n) => n > 0,
    );
    expect(uaRows).toBeGreaterThan(0);
    const outcomes = await page.locator('table.audit tbody td:nth-child(5)').allTextContents();
    expect(new Set(outcomes)).toEqual(new Set(['denied']));
    await expect(
      page.locator('td.ua', { hasText: '<script>window.__xss=1</script>' }).count(),
    ).resolves.toBeGreaterThan(0);
    await expectAccessible();
    await shot('audit');

    const href = await page.getByRole('link', { name: 'Export CSV' }).getAttribute('href');
    const csv = await page.request.get(`${base}${href}`);
    expect(csv.headers()['content-type']).toContain('text/csv');
    const rows = parse(await csv.text(), { columns: true }) as Array<Record<string, string>>;
    expect(rows.length).toBeGreaterThan(0);
    expect(new Set(rows.map((r) => r.username))).toEqual(new Set([customer.username]));
    const ua = rows.find((r) => r.userAgent.includes('HYPERLINK'));
    expect(ua?.userAgent.startsWith(`'=HYPERLINK`)).toBe(true);

    await page.goto(`${base}/console/audit?action=token.refuse`);
    const evilRows = await eventually(
      async () => {
        await page.reload();
        return page.getByRole('cell', { name: EVIL_USERNAME, exact: true }).count();
      },
      (n) => n > 0,
    );
    expect(evilRows).toBeGreaterThan(0);
    await expect(page.locator('img').count()).resolves.toBe(0);
    expect(await page.evaluate(() => (globalThis as { __xss?: number }).__xss)).toBeUndefined();
    expect(dialogs).toEqual([]);
  });

  it('shows hostile references as text: in explain, in the rule editor and in a release tag', async () => {
    // The registry refuses a percent-encoded reference before anything reads it: the console meets
    // hostile references as typed by staff, and as release tags published upstream.
    stack.front.addRelease('acme/evil', { tag: EVIL_REFERENCE, assets: { 'x.txt': Buffer.from('x') } });
    const views = [
      `/console/explain?${new URLSearchParams({ member: customer.username, image: `acme/app:${EVIL_REFERENCE}` })}`,
      `/console/explain?${new URLSearchParams({ member: EVIL_REFERENCE, image: 'acme/app:v1.0.0' })}`,
      `/console/grant?${new URLSearchParams({ member: customer.username, repository: 'acme/app', tags: EVIL_REFERENCE })}`,
      `/console/grant?${new URLSearchParams({ member: customer.username, repository: 'releases:acme/evil', tags: '*' })}`,
    ];
    for (const view of views) {
      await page.goto(`${base}${view}`);
      // As text on the page, or as the value of the field it was typed in.
      const shown = [
        await page.locator('main').textContent(),
        ...(await page
          .locator('main input, main textarea')
          .evaluateAll((fields) => fields.map((f) => (f as unknown as { value: string }).value))),
      ];
      expect({ view, shown: shown.some((t) => t?.includes(EVIL_REFERENCE)) }).toEqual({ view, shown: true });
      await expectAccessible();
      await expect(page.locator('svg, img').count()).resolves.toBe(0);
    }
    await expect(page.locator('section.card ul.tags li').allTextContents()).resolves.toEqual([
      EVIL_REFERENCE,
    ]);
    expect(await page.evaluate(() => (globalThis as { __xss?: number }).__xss)).toBeUndefined();
    expect(dialogs).toEqual([]);
  });

  it('shows a pull made during the test in the live tail', async () => {
    await page.goto(`${base}/console/audit?member=${customer.username}&action=manifest.get`);
    await page.getByRole('button', { name: 'Start the live tail' }).click();
    await expect(
      eventually(
        () => page.locator('#tail-state').textContent(),
        (t) => !!t?.includes('Live'),
      ),
    ).resolves.toContain('Live');
    const made = await pull('v1.1.0');
    expect(made.status).toBe(200);
    // Rows an earlier test's requests wrote just before the tail started may come first.
    const tail = await eventually(
      () => page.locator('#tail li').allTextContents(),
      (items) => items.some((t) => t.includes('manifest.get') && t.includes('acme/app:v1.1.0')),
    );
    expect(tail).toEqual(
      expect.arrayContaining([expect.stringMatching(/manifest\.get .*acme\/app:v1\.1\.0/)]),
    );
    await page.getByRole('button', { name: 'Stop the live tail' }).click();
  });

  it('draws a chart and version adoption from the real audit rows', async () => {
    await page.goto(`${base}/console/analytics?days=7&repository=acme/app&member=${customer.username}`);
    const drawn = await eventually(
      () => page.locator('#activity-chart').getAttribute('data-drawn'),
      (v) => v !== null,
    );
    expect(Number(drawn)).toBeGreaterThanOrEqual(1);
    await expect(page.locator('#activity-chart canvas').count()).resolves.toBe(1);
    // The customer's allowed pulls in this test: v1.1.0 twice (after the grant, and in the live tail).
    const summary = await page.locator('.summary').textContent();
    expect(summary).toMatch(/^2 pulls/);
    const adoption = page.locator('section', { has: page.locator('#adoption') });
    await expect(adoption.textContent()).resolves.toContain('1 versions in use');
    await expect(adoption.locator('tr', { hasText: customer.username }).textContent()).resolves.toContain(
      'v1.1.0',
    );
    await expect(page.locator('table', { hasText: 'Refusals by reason' }).textContent()).resolves.toContain(
      'tag_not_entitled',
    );
    await expectAccessible();
    await shot('analytics');
  });

  it('refuses a cross-site POST, and a POST without the CSRF token', async () => {
    const status = page.waitForResponse((r) => r.url().endsWith('/disable'));
    await page.goto(attackerUrl);
    expect([401, 403]).toContain((await status).status());
    await page.goto(`${base}/console/members/${customer.username}`);
    await expect(page.locator('main p').first().textContent()).resolves.toContain('Status: active');

    const csrf = await csrfToken();
    const forged = await page.request.post(`${base}/console/members/${customer.username}/disable`, {
      form: { _csrf: csrf },
      headers: { origin: 'http://localhost:1', accept: 'application/json' },
    });
    expect(forged.status()).toBe(403);
    const tokenless = await page.request.post(`${base}/console/members/${customer.username}/disable`, {
      form: {},
      headers: { accept: 'application/json' },
    });
    expect(tokenless.status()).toBe(403);
    // An error page says what to do, and is as accessible as the others.
    const missing = await page.goto(`${base}/console/members/nobody-here`);
    expect(missing?.status()).toBe(404);
    await expectAccessible();
    const response = await page.goto(`${base}/console/members`);
    expect(response?.headers()['content-security-policy']).toContain("script-src 'self'");
    await expectAccessible();
    await shot('members');
  });

  it('shows readiness, the replicas seen recently and the cache, audit and upstream metrics', async () => {
    await page.goto(`${base}/console/health`);
    await expect(page.locator('tr', { hasText: 'database' }).first().textContent()).resolves.toContain('up');
    await expect(page.locator('tr', { hasText: 'upstream' }).first().textContent()).resolves.toContain('up');
    await expect(page.locator('#metrics + table tbody tr').count()).resolves.toBeGreaterThan(0);
    await expect(page.locator('#cache-use').textContent()).resolves.toMatch(
      /^This replica’s cache holds \d+ blobs?, \S+ \(no cap\); 0 evicted since it started\.$/,
    );
    // The stack's gateway and this built one share the database: two replicas seen recently.
    await expect(page.locator('#replicas + table caption').textContent()).resolves.toBe(
      '2 seen in the last minute',
    );
    await expect(page.locator('#replicas + table').textContent()).resolves.toContain(host);
    await expectAccessible();
    await shot('health');
  });

  it('ends the session at sign-out: the old cookie no longer works', async () => {
    const cookies = await context.cookies(`${base}/console/`);
    const session = cookies.find((c) => c.name === 'gatehouse_console');
    expect(session).toMatchObject({ httpOnly: true, sameSite: 'Strict' });
    await signOut();
    const stale = await fetch(`${base}/console/members`, {
      headers: { cookie: `gatehouse_console=${session!.value}`, accept: 'application/json' },
    });
    expect(stale.status).toBe(401);
    await expectAccessible();
    await shot('login');
  });
});
