import { randomUUID } from 'node:crypto';
import { createTestGateway, TestGateway } from '@gatehouse/testing/gateway';

type Json = Record<string, unknown>;
const ADMIN_TOKEN = 'adm_' + 'k'.repeat(20) + randomUUID().replace(/-/g, '');

/** The admin API grants, lists, explains and revokes releases and packages targets like images. */
describe('admin API: entitlement kinds', () => {
  let gw: TestGateway;

  async function api(method: string, path: string, body?: unknown): Promise<{ status: number; body: Json }> {
    const res = await fetch(`${gw.url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${ADMIN_TOKEN}`,
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? (JSON.parse(text) as Json) : {} };
  }

  beforeAll(async () => {
    gw = await createTestGateway({ env: { ADMIN_TOKEN } });
    expect((await api('POST', '/admin/members', { username: 'kinds' })).status).toBe(201);
    expect((await api('POST', '/admin/members/kinds/keys', {})).status).toBe(201);
  });
  afterAll(async () => {
    await gw?.close();
  });

  it('grants, filters, explains and revokes a releases target', async () => {
    const granted = await api('POST', '/admin/entitlements', {
      member: 'kinds',
      repository: 'releases:acme/tool',
      tags: ['semver:^1.2'],
    });
    expect(granted.status).toBe(201);
    expect(granted.body).toMatchObject({
      kind: 'releases',
      repository: 'acme/tool',
      target: 'releases:acme/tool',
    });
    expect(
      (await api('POST', '/admin/entitlements', { member: 'kinds', repository: 'acme/tool', tags: ['*'] }))
        .status,
    ).toBe(201);

    const listed = await api('GET', '/admin/entitlements?repository=releases:acme/tool');
    expect((listed.body.items as Json[]).map((e) => e.target)).toEqual(['releases:acme/tool']);

    const yes = await api(
      'GET',
      `/admin/explain?member=kinds&image=${encodeURIComponent('releases:acme/tool@v1.2.5')}`,
    );
    expect(yes.body).toMatchObject({ repository: 'releases:acme/tool', tag: 'v1.2.5', allowed: true });
    const no = await api(
      'GET',
      `/admin/explain?member=kinds&image=${encodeURIComponent('releases:acme/tool@v2.0.0')}`,
    );
    expect(no.body).toMatchObject({ allowed: false, reason: 'tag_not_entitled' });
    const bad = await api('GET', `/admin/explain?member=kinds&image=${encodeURIComponent('releases:acme')}`);
    expect(bad.status).toBe(400);

    expect(
      (await api('POST', '/admin/entitlements/revoke', { member: 'kinds', repository: 'releases:acme/tool' }))
        .status,
    ).toBe(200);
    const after = await api('GET', '/admin/entitlements?member=kinds');
    expect((after.body.items as Json[]).map((e) => e.target)).toEqual(['acme/tool']);
  });
});
