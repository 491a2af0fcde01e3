import { randomUUID } from 'node:crypto';
import { EntitlementService } from '@gatehouse/entitlements';
import { AccessKeyService, MemberService } from '@gatehouse/members';
import { createTestGateway, TestGateway } from '@gatehouse/testing/gateway';

/**
 * Two gateways in one process, each with its own ADMIN_TOKEN and its own DATA_DIR (so its own
 * token signing key and access-key secret), and the same service name (so a token's audience
 * fits both). Passport keeps strategies process-wide: each gateway must still check every
 * credential with its own secrets, whichever gateway started last. Each has its own database:
 * replicas of one database must share their secrets (apps/gateway/test/replicas).
 */
describe('two gateways in one process share no secret', () => {
  const SERVICE = 'registry.gatehouse.test';
  const adminA = 'A'.repeat(40);
  const adminB = 'B'.repeat(40);
  let a: TestGateway;
  let b: TestGateway;

  const env = (adminToken: string) => ({
    ADMIN_TOKEN: adminToken,
    OCI_REGISTRY_SERVICE: SERVICE,
    OCI_REGISTRY_REALM: 'http://registry.gatehouse.test/auth/token',
    // /v2/ enabled for the ping; nothing here reaches upstream.
    FORGEJO_BASE_URL: 'http://127.0.0.1:9',
    FORGEJO_API_TOKEN: 'f'.repeat(40),
  });

  beforeAll(async () => {
    a = await createTestGateway({ env: env(adminA) });
    b = await createTestGateway({ env: env(adminB) });
  });

  afterAll(async () => {
    await b?.close();
    await a?.close();
  });

  /** A member enrolled through one gateway: its key is hashed with that gateway's secret. */
  async function member(on: TestGateway): Promise<{ username: string; basic: string }> {
    const username = `two-${randomUUID().slice(0, 8)}`;
    await on.app.get(MemberService).create(username);
    const { key } = await on.app.get(AccessKeyService).create(username, { name: 'test' });
    await on.app.get(EntitlementService).grant(username, 'acme/app', ['*']);
    return { username, basic: 'Basic ' + Buffer.from(`${username}:${key}`).toString('base64') };
  }

  const status = async (gw: TestGateway, path: string, authorization: string) =>
    (await fetch(`${gw.url}${path}`, { headers: { authorization } })).status;

  async function login(gw: TestGateway, basic: string): Promise<{ status: number; token?: string }> {
    const res = await fetch(`${gw.url}/auth/token?service=${SERVICE}`, { headers: { authorization: basic } });
    const body = (await res.json()) as { token?: string };
    return { status: res.status, token: body.token };
  }

  it("each admin API accepts its own ADMIN_TOKEN and refuses the other gateway's", async () => {
    expect(await status(a, '/admin/members', `Bearer ${adminA}`)).toBe(200);
    expect(await status(a, '/admin/members', `Bearer ${adminB}`)).toBe(401);
    expect(await status(b, '/admin/members', `Bearer ${adminB}`)).toBe(200);
    expect(await status(b, '/admin/members', `Bearer ${adminA}`)).toBe(401);
  });

  it('each token endpoint checks access keys with its own secret, and /v2/ tokens with its own key', async () => {
    const onA = await member(a);
    const onB = await member(b);
    const fromA = await login(a, onA.basic);
    const fromB = await login(b, onB.basic);
    expect([fromA.status, fromB.status]).toEqual([200, 200]);
    // Other access-key secret (and database): the other gateway does not recognise the key.
    expect((await login(b, onA.basic)).status).toBe(401);
    expect((await login(a, onB.basic)).status).toBe(401);
    // Same audience, other signing key: each /v2/ accepts only the tokens it signed.
    expect(await status(a, '/v2/', `Bearer ${fromA.token}`)).toBe(200);
    expect(await status(b, '/v2/', `Bearer ${fromB.token}`)).toBe(200);
    const crossed = await fetch(`${b.url}/v2/`, { headers: { authorization: `Bearer ${fromA.token}` } });
    expect(crossed.status).toBe(401);
    expect(crossed.headers.get('www-authenticate')).toContain('error="invalid_token"');
    expect(await status(a, '/v2/', `Bearer ${fromB.token}`)).toBe(401);
  });
});
