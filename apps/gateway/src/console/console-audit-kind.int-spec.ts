import { randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import { createTestGateway, TestGateway } from '@gatehouse/testing/gateway';

const ADMIN_TOKEN = 'console-audit-kind-admin-token-0123456789';

/** The repository column of the console's audit table, row by row. */
const repositories = (html: string) =>
  [
    ...html.matchAll(
      /<tr class="outcome-[^"]*">[\s\S]*?<td>[\s\S]*?<\/td>\s*<td>[\s\S]*?<\/td>\s*<td>[\s\S]*?<\/td>\s*<td>([^<]*)/g,
    ),
  ].map((m) => m[1]);

/** The audit filtered by what the target is: images, releases or packages (console and admin API). */
describe('audit filter by kind', () => {
  let gw: TestGateway;
  let cookie: string;
  const user = `kind-${randomUUID().slice(0, 8)}`;

  beforeAll(async () => {
    gw = await createTestGateway({ env: { ADMIN_TOKEN } });
    const rows: Array<[string, string | null]> = [
      ['manifest.get', 'acme/app'],
      ['download', 'releases:acme/tool'],
      ['download', 'packages:acme/cli'],
      ['token.refuse', null],
    ];
    for (const [i, [action, repository]] of rows.entries())
      await gw.app.get(DataSource).query(
        `INSERT INTO audit_events (id, occurred_at, request_id, username, action, repository, outcome)
         VALUES ($1, now() - make_interval(secs => $2), $3, $4, $5, $6, 'allowed')`,
        [randomUUID(), i, randomUUID(), user, action, repository],
      );
    const signIn = await fetch(`${gw.url}/console/login/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'sec-fetch-site': 'same-origin' },
      body: new URLSearchParams({ token: ADMIN_TOKEN }).toString(),
    });
    cookie = signIn.headers.get('set-cookie')!.split(';')[0];
  });
  afterAll(() => gw?.close());

  it.each([
    ['image', ['acme/app']],
    ['releases', ['releases:acme/tool']],
    ['packages', ['packages:acme/cli']],
    ['', ['acme/app', 'releases:acme/tool', 'packages:acme/cli', '']],
  ])('kind=%s lists only those targets', async (kind, expected) => {
    const page = await fetch(`${gw.url}/console/audit?${new URLSearchParams({ member: user, kind })}`, {
      headers: { cookie },
    });
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(repositories(html)).toEqual(expected);
    if (kind) expect(html).toContain(`<option value="${kind}" selected>`);
    const api = await fetch(
      `${gw.url}/admin/audit?${new URLSearchParams({ member: user, ...(kind ? { kind } : {}) })}`,
      {
        headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      },
    );
    const { items } = (await api.json()) as { items: Array<{ repository: string | null }> };
    expect(items.map((e) => e.repository ?? '')).toEqual(expected);
  });

  it('refuses an unknown kind', async () => {
    const page = await fetch(`${gw.url}/console/audit?kind=helm`, {
      headers: { cookie, accept: 'application/json' },
    });
    expect(page.status).toBe(400);
  });
});
