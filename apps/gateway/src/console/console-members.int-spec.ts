import { AccessKeyService, MemberService } from '@gatehouse/members';
import { EntitlementService } from '@gatehouse/entitlements';
import { createTestGateway, TestGateway } from '@gatehouse/testing/gateway';

const ADMIN_TOKEN = 'console-members-spec-admin-token-0123456789';
const FORM = { 'content-type': 'application/x-www-form-urlencoded', 'sec-fetch-site': 'same-origin' };

/**
 * The console's member pages as an admin: search, create, keys and grants of every kind, revoking a
 * grant, disable and enable.
 */
describe('console members', () => {
  let gw: TestGateway;
  let cookie: string;
  let csrf: string;

  const get = async (path: string) => {
    const res = await fetch(`${gw.url}${path}`, { headers: { cookie } });
    expect(res.status).toBe(200);
    return res.text();
  };
  const post = (path: string, form: Record<string, string>) =>
    fetch(`${gw.url}${path}`, {
      method: 'POST',
      redirect: 'manual',
      headers: { ...FORM, cookie },
      body: new URLSearchParams({ _csrf: csrf, ...form }).toString(),
    });
  const audited = async (action: string, username: string) => {
    const res = await fetch(`${gw.url}/admin/audit?${new URLSearchParams({ action, member: username })}`, {
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    });
    return ((await res.json()) as { items: Array<{ details: Record<string, unknown> }> }).items;
  };
  const until = async <T>(read: () => Promise<T[]>): Promise<T[]> => {
    for (let i = 0; i < 50; i++) {
      const found = await read();
      if (found.length) return found;
      await new Promise((r) => setTimeout(r, 100));
    }
    return [];
  };

  beforeAll(async () => {
    gw = await createTestGateway({ env: { ADMIN_TOKEN } });
    const members = gw.app.get(MemberService);
    for (const name of ['walnut-a', 'walnut-b', 'pecan']) await members.create(name);
    await gw.app.get(AccessKeyService).create('walnut-a', {
      name: 'ci',
      expiresAt: new Date('2030-01-02T03:04:05Z'),
    });
    const grants = gw.app.get(EntitlementService);
    await grants.grant('walnut-a', 'acme/app', ['v1.*']);
    await grants.grant('walnut-a', 'releases:acme/tool', ['semver:^1']);
    await grants.grant('walnut-a', 'packages:acme/cli', ['1.4.*']);
    const signIn = await fetch(`${gw.url}/console/login/token`, {
      method: 'POST',
      headers: FORM,
      body: new URLSearchParams({ token: ADMIN_TOKEN }).toString(),
    });
    cookie = signIn.headers.get('set-cookie')!.split(';')[0];
    csrf = /name="_csrf" value="([^"]+)"/.exec(await get('/console/members'))![1];
  });
  afterAll(() => gw?.close());

  it('searches members by part of the username, whatever its case', async () => {
    const html = await get('/console/members?q=WALNUT');
    expect(html).toMatch(/<caption>2 of 3 members<\/caption>/);
    expect(html).toContain('>walnut-a</a>');
    expect(html).toContain('>walnut-b</a>');
    expect(html).not.toContain('>pecan</a>');
    expect(await get('/console/members?q=zzz')).toContain('No member matches; try part of the username.');
  });

  it('creates a member, audited with the staff identity', async () => {
    const made = await post('/console/members', { username: 'almond', note: 'from the console' });
    expect(made.status).toBe(303);
    expect(made.headers.get('location')).toBe('/console/members/almond');
    expect(await get('/console/members/almond')).toContain('from the console');
    const rows = await until(() => audited('admin.member.create', 'almond'));
    expect(rows[0]?.details).toMatchObject({
      actor: 'console',
      staff: { subject: 'admin-token', role: 'admin' },
    });
  });

  it("shows a member's keys (last used, expiry) and entitlements of every kind", async () => {
    const html = await get('/console/members/walnut-a');
    const keyRow = /<tr><td><code>[^<]+<\/code><\/td><td>ci<\/td>[\s\S]*?<\/tr>/.exec(html)?.[0] ?? '';
    expect(keyRow).toContain('<span class="muted">never</span>');
    expect(keyRow).toContain('<time datetime="2030-01-02T03:04:05.000Z"');
    for (const [target, kind] of [
      ['acme/app', 'image'],
      ['releases:acme/tool', 'releases'],
      ['packages:acme/cli', 'packages'],
    ])
      expect(html).toContain(`<tr><td>${target}</td><td>${kind}</td>`);
  });

  it('revokes an entitlement after a confirmation, audited with the staff identity', async () => {
    const member = await get('/console/members/walnut-a');
    const link = /href="(\/console\/grant\/revoke\?[^"]*releases%3Aacme%2Ftool[^"]*)">Revoke…<\/a>/.exec(
      member,
    );
    expect(link).not.toBeNull();
    const confirm = await get(link![1].replace(/&#38;|&amp;/g, '&'));
    expect(confirm).toContain('Revoke the entitlement of walnut-a to <code>releases:acme/tool</code>');
    expect(confirm).toContain('Revoke the entitlement</button>');
    const done = await post('/console/grant/revoke', {
      member: 'walnut-a',
      repository: 'releases:acme/tool',
    });
    expect(done.status).toBe(303);
    expect(done.headers.get('location')).toBe('/console/members/walnut-a');
    const after = await get('/console/members/walnut-a');
    expect(after).not.toContain('<tr><td>releases:acme/tool</td>');
    expect(after).toContain('<tr><td>packages:acme/cli</td>');
    const rows = await until(() => audited('admin.entitlement.revoke', 'walnut-a'));
    expect(rows[0]?.details).toMatchObject({
      actor: 'console',
      staff: { subject: 'admin-token', role: 'admin' },
    });
    const again = await fetch(
      `${gw.url}/console/grant/revoke?member=walnut-a&repository=releases:acme/tool`,
      {
        headers: { cookie },
      },
    );
    expect(again.status).toBe(404);
  });

  it('disables and enables a member, each audited with the staff identity', async () => {
    expect((await post('/console/members/walnut-b/disable', {})).status).toBe(303);
    let html = await get('/console/members/walnut-b');
    expect(html).toContain('Status: <strong>disabled</strong>');
    expect(html).toContain('Enable member</button>');
    expect((await post('/console/members/walnut-b/enable', {})).status).toBe(303);
    html = await get('/console/members/walnut-b');
    expect(html).toContain('Status: <strong>active</strong>');
    for (const action of ['admin.member.disable', 'admin.member.enable']) {
      const rows = await until(() => audited(action, 'walnut-b'));
      expect({ action, details: rows[0]?.details }).toMatchObject({
        action,
        details: { actor: 'console', staff: { subject: 'admin-token' } },
      });
    }
  });
});
