import { randomBytes, randomUUID } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Client } from 'pg';
import { MemberChangeListener, TokenSigningKey } from '@gatehouse/auth';
import { EntitlementService } from '@gatehouse/entitlements';
import { AccessKeyService, MemberService } from '@gatehouse/members';
import { ManualClock } from '@gatehouse/observability';
import { createTestGateway, TestGateway } from '@gatehouse/testing/gateway';
import { makeTempDir, TempDir } from '@gatehouse/testing/upstream';

/**
 * Changes made through one replica reach the other at once: two gateways on one PostgreSQL with
 * the same secrets; the second runs on a ManualClock that never moves, so its time-based caches
 * (AUTH_STATE_CACHE_SECONDS=10) never expire and only the NOTIFY/LISTEN path can end access.
 */
describe('invalidation across replicas', () => {
  const SERVICE = 'registry.gatehouse.test';
  const ADMIN = 'I'.repeat(40);
  let secrets: TempDir;
  let a: TestGateway;
  let b: TestGateway;

  beforeAll(async () => {
    secrets = await makeTempDir('replica-invalidation');
    const signing = join(secrets.path, 'signing.pem');
    const accessKey = join(secrets.path, 'access-key');
    await writeFile(signing, TokenSigningKey.generatePem(), { mode: 0o600 });
    await writeFile(accessKey, randomBytes(32).toString('hex'), { mode: 0o600 });
    const env = {
      ADMIN_TOKEN: ADMIN,
      OCI_REGISTRY_SERVICE: SERVICE,
      OCI_REGISTRY_REALM: 'http://registry.gatehouse.test/auth/token',
      FORGEJO_BASE_URL: 'http://127.0.0.1:9',
      FORGEJO_API_TOKEN: 'f'.repeat(40),
      TOKEN_SIGNING_KEY_FILE: signing,
      ACCESS_KEY_SECRET_FILE: accessKey,
      AUTH_STATE_CACHE_SECONDS: '10',
    };
    a = await createTestGateway({ env });
    b = await createTestGateway({
      env,
      databaseUrl: a.databaseUrl,
      keepDatabase: true,
      clock: new ManualClock(Date.now()),
    });
  });

  afterAll(async () => {
    await b?.close();
    await a?.close();
    await secrets?.cleanup();
  });

  async function member(): Promise<{ username: string; token: string }> {
    const username = `inv-${randomUUID().slice(0, 8)}`;
    await a.app.get(MemberService).create(username);
    const { key } = await a.app.get(AccessKeyService).create(username, { name: 'test' });
    await a.app.get(EntitlementService).grant(username, 'acme/app', ['*']);
    const basic = 'Basic ' + Buffer.from(`${username}:${key}`).toString('base64');
    const res = await fetch(`${b.url}/auth/token?service=${SERVICE}&scope=repository:acme/app:pull`, {
      headers: { authorization: basic },
    });
    expect(res.status).toBe(200);
    return { username, token: ((await res.json()) as { token: string }).token };
  }

  const admin = (path: string, body?: unknown) =>
    fetch(`${a.url}/admin${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
      body: JSON.stringify(body ?? {}),
    });

  const status = async (path: string, token: string) =>
    (await fetch(`${b.url}${path}`, { headers: { authorization: `Bearer ${token}` } })).status;

  /** Polls b until `path` answers `expected` (the notification has arrived), within 1 s. */
  async function refusedWithinOneSecond(path: string, token: string, expected: number): Promise<void> {
    const until = Date.now() + 1_000;
    let last = await status(path, token);
    while (last !== expected && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 20));
      last = await status(path, token);
    }
    expect(last).toBe(expected);
  }

  it('a key revoked through the admin API of one replica is refused by the other', async () => {
    const who = await member();
    expect(await status('/v2/', who.token)).toBe(200);
    const [key] = await a.app.get(AccessKeyService).list(who.username);
    expect((await admin(`/keys/${key.id}/revoke`)).status).toBe(200);
    await refusedWithinOneSecond('/v2/', who.token, 401);
  });

  it('a member disabled on one replica is refused by the other', async () => {
    const who = await member();
    expect(await status('/v2/', who.token)).toBe(200);
    expect((await admin(`/members/${who.username}/disable`)).status).toBe(200);
    await refusedWithinOneSecond('/v2/', who.token, 401);
  });

  it('an entitlement removed on one replica is refused by the other', async () => {
    const who = await member();
    const path = '/v2/acme/app/manifests/v1';
    const before = await status(path, who.token);
    // Entitled: the request goes on to the (unreachable) upstream; not entitled: refused first.
    const notEntitled = await (async () => {
      const other = await member();
      await a.app.get(EntitlementService).revoke(other.username, 'acme/app');
      await refusedWithinOneSecond(path, other.token, 404);
      return 404;
    })();
    expect(before).not.toBe(notEntitled);
    expect(
      (await admin('/entitlements/revoke', { member: who.username, repository: 'acme/app' })).status,
    ).toBe(200);
    await refusedWithinOneSecond(path, who.token, notEntitled);
  });

  it('a replica whose listener was terminated keeps short caches, reconnects and hears changes again', async () => {
    const listener = b.app.get(MemberChangeListener);
    expect(listener.isListening).toBe(true);
    const pid = listener.backendPid;
    const db = new Client({ connectionString: a.databaseUrl });
    await db.connect();
    try {
      await db.query('SELECT pg_terminate_backend($1)', [pid]);
    } finally {
      await db.end();
    }
    const until = Date.now() + 10_000;
    while (!(listener.isListening && listener.backendPid !== pid) && Date.now() < until)
      await new Promise((r) => setTimeout(r, 50));
    expect(listener.isListening).toBe(true);
    expect(listener.backendPid).not.toBe(pid);
    expect(b.logs.some((l) => /lost the member-change listener/.test(String(l.msg)))).toBe(true);

    const who = await member();
    expect(await status('/v2/', who.token)).toBe(200);
    const [key] = await a.app.get(AccessKeyService).list(who.username);
    await a.app.get(AccessKeyService).revoke(key.id);
    await refusedWithinOneSecond('/v2/', who.token, 401);
  });
});
