import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { AuditQueryService, AuditService } from '@gatehouse/audit';
import { AccessKeyService, MemberService } from '@gatehouse/members';
import { createTestGateway, TestGateway } from '@gatehouse/testing/gateway';
import { ContainerToolsSandbox, createContainerToolsSandbox } from '@gatehouse/testing/upstream';

/** `skopeo login` and `podman login` against the real gateway over plain http. */
describe('docker-style login with real clients', () => {
  let gw: TestGateway;
  let tools: ContainerToolsSandbox;
  let members: MemberService;
  let keys: AccessKeyService;

  beforeAll(async () => {
    gw = await createTestGateway({
      env: {
        AUTH_FAILED_LOGINS_PER_IP: '1000',
        AUTH_FAILED_LOGINS_PER_USERNAME: '1000',
        // Login only pings /v2/: the registry must be enabled, but no upstream is ever contacted.
        FORGEJO_BASE_URL: 'http://127.0.0.1:9',
        FORGEJO_API_TOKEN: 'a'.repeat(40),
      },
    });
    tools = await createContainerToolsSandbox();
    members = gw.app.get(MemberService);
    keys = gw.app.get(AccessKeyService);
  });
  afterAll(async () => {
    await tools?.cleanup();
    await gw?.close();
  });

  async function member() {
    const username = `c-${randomUUID().slice(0, 8)}`;
    const m = await members.create(username);
    const { key, accessKey } = await keys.create(username);
    return { username, key, keyId: accessKey.id, memberId: m.id };
  }

  const clients = {
    skopeo: (u: string, p: string) =>
      tools.skopeo([
        'login',
        '--tls-verify=false',
        '--authfile',
        join(tools.dir, `skopeo-${randomUUID()}.json`),
        '-u',
        u,
        '-p',
        p,
        gw.host,
      ]),
    podman: (u: string, p: string) =>
      tools.podman([
        'login',
        '--tls-verify=false',
        '--authfile',
        join(tools.dir, `podman-${randomUUID()}.json`),
        '-u',
        u,
        '-p',
        p,
        gw.host,
      ]),
  };

  async function lastRow(username: string) {
    await gw.app.get(AuditService).flush(10_000);
    return (await gw.app.get(AuditQueryService).find({ username, action: 'token.refuse' }))[0];
  }

  describe.each(Object.keys(clients) as Array<keyof typeof clients>)('%s login', (client) => {
    const login = (u: string, p: string) => clients[client](u, p);

    it('succeeds with a valid key', async () => {
      const m = await member();
      const r = await login(m.username, m.key);
      expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
      expect(r.stdout).toMatch(/Login Succeeded/);
      await gw.app.get(AuditService).flush(10_000);
      const issued = await gw.app
        .get(AuditQueryService)
        .find({ username: m.username, action: 'token.issue' });
      expect(issued.length).toBeGreaterThan(0);
      expect(issued[0].userAgent).toBeTruthy();
    });

    it.each<[string, (m: Awaited<ReturnType<typeof member>>) => Promise<string>, string]>([
      ['a wrong key', async () => `ghk_${'x'.repeat(43)}`, 'bad_credentials'],
      [
        'a revoked key',
        async (m) => {
          await keys.revoke(m.keyId);
          return m.key;
        },
        'key_revoked',
      ],
      [
        'an expired key',
        async (m) => {
          await gw.app
            .get(DataSource)
            .query(`UPDATE access_keys SET expires_at = now() - interval '1 second' WHERE id = $1`, [
              m.keyId,
            ]);
          return m.key;
        },
        'key_expired',
      ],
      [
        'a disabled member',
        async (m) => {
          await members.disable(m.username);
          return m.key;
        },
        'member_disabled',
      ],
    ])('fails with %s', async (_label, prepare, reason) => {
      const m = await member();
      const password = await prepare(m);
      const r = await login(m.username, password);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/invalid username\/password/);
      expect(await lastRow(m.username)).toMatchObject({ reason, outcome: 'denied', httpStatus: 401 });
    });
  });
});
