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

/**
 * The console's audit: filtered by what the target is (console and admin API), keyset pages, and a
 * live tail filtered the same way.
 */
describe('console audit', () => {
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

  it('pages 50 events at a time with an "Older events" link, to the last', async () => {
    const pager = `pager-${randomUUID().slice(0, 8)}`;
    await gw.app.get(DataSource).query(
      `INSERT INTO audit_events (id, occurred_at, request_id, username, action, repository, outcome)
       SELECT gen_random_uuid(), now() - make_interval(secs => i), gen_random_uuid()::text, $1, 'manifest.get',
         'acme/app', 'allowed'
       FROM generate_series(1, 55) AS i`,
      [pager],
    );
    const first = await (
      await fetch(`${gw.url}/console/audit?member=${pager}`, { headers: { cookie } })
    ).text();
    expect(repositories(first)).toHaveLength(50);
    const next = /<a class="button" rel="next" href="([^"]+)">Older events<\/a>/.exec(first);
    expect(next).not.toBeNull();
    const second = await (
      await fetch(`${gw.url}${next![1].replace(/&#38;|&amp;/g, '&')}`, { headers: { cookie } })
    ).text();
    expect(repositories(second)).toHaveLength(5);
    expect(second).not.toContain('Older events');
  });

  it('tails new events matching the same filters over Server-Sent Events', async () => {
    const tailed = `tail-${randomUUID().slice(0, 8)}`;
    const controller = new AbortController();
    const res = await fetch(`${gw.url}/console/audit/stream?member=${tailed}&kind=releases`, {
      headers: { cookie },
      signal: controller.signal,
    });
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    const insert = (repository: string) =>
      gw.app.get(DataSource).query(
        `INSERT INTO audit_events (id, occurred_at, request_id, username, action, repository, outcome)
         VALUES (gen_random_uuid(), now(), gen_random_uuid()::text, $1, 'download', $2, 'allowed')`,
        [tailed, repository],
      );
    await insert('packages:acme/cli');
    await insert('releases:acme/tool');
    const reader = res.body!.getReader();
    let text = '';
    const until = Date.now() + 10_000;
    while (!text.includes('releases:acme/tool') && Date.now() < until) {
      const { value, done } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    controller.abort();
    // Both rows were written before the poll that found the release: a filter letting the
    // package through would have sent it first.
    const events = [...text.matchAll(/^event: audit\nid: [^\n]*\ndata: (.*)$/gm)].map(
      (m) => (JSON.parse(m[1]) as { repository: string }).repository,
    );
    expect(events).toEqual(['releases:acme/tool']);
  });

  it('refuses an unknown kind', async () => {
    const page = await fetch(`${gw.url}/console/audit?kind=helm`, {
      headers: { cookie, accept: 'application/json' },
    });
    expect(page.status).toBe(400);
  });
});
