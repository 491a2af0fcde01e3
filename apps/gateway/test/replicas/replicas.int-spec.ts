import { randomBytes, randomUUID } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { TokenSigningKey } from '@gatehouse/auth';
import { EntitlementService } from '@gatehouse/entitlements';
import { AccessKeyService, MemberService } from '@gatehouse/members';
import { createTestGateway, startBuiltGateway, TestGateway } from '@gatehouse/testing/gateway';
import { startTestRedis, TestRedis } from '@gatehouse/testing/redis';
import { getFreePort, makeTempDir, TempDir } from '@gatehouse/testing/upstream';

/**
 * Two replicas as operators run them: one PostgreSQL, one Redis (a real redis-server), the same
 * TOKEN_SIGNING_KEY_FILE and ACCESS_KEY_SECRET_FILE, each its own DATA_DIR.
 */
describe('replicas sharing PostgreSQL, Redis and the secrets', () => {
  const SERVICE = 'registry.gatehouse.test';
  let redis: TestRedis;
  let secrets: TempDir;
  let a: TestGateway;
  let b: TestGateway;

  const env = (files: { signing: string; accessKey: string }) => ({
    ADMIN_TOKEN: 'R'.repeat(40),
    OCI_REGISTRY_SERVICE: SERVICE,
    OCI_REGISTRY_REALM: 'http://registry.gatehouse.test/auth/token',
    FORGEJO_BASE_URL: 'http://127.0.0.1:9',
    FORGEJO_API_TOKEN: 'f'.repeat(40),
    TOKEN_SIGNING_KEY_FILE: files.signing,
    ACCESS_KEY_SECRET_FILE: files.accessKey,
    REDIS_URL: redis.url,
    RATE_LIMIT_V2_PER_MEMBER: '40',
    AUTH_FAILED_LOGINS_PER_USERNAME: '3',
  });

  async function secretFiles(dir: string, label: string) {
    const files = { signing: join(dir, `${label}-signing.pem`), accessKey: join(dir, `${label}-access-key`) };
    await writeFile(files.signing, TokenSigningKey.generatePem(), { mode: 0o600 });
    await writeFile(files.accessKey, randomBytes(32).toString('hex'), { mode: 0o600 });
    return files;
  }

  beforeAll(async () => {
    redis = await startTestRedis();
    secrets = await makeTempDir('replica-secrets');
    const shared = await secretFiles(secrets.path, 'shared');
    a = await createTestGateway({ env: env(shared) });
    b = await createTestGateway({ env: env(shared), databaseUrl: a.databaseUrl, keepDatabase: true });
  });

  afterAll(async () => {
    await b?.close();
    await a?.close();
    await secrets?.cleanup();
    await redis?.stop();
  });

  async function member(): Promise<{ username: string; key: string; basic: string }> {
    const username = `rep-${randomUUID().slice(0, 8)}`;
    await a.app.get(MemberService).create(username);
    const { key } = await a.app.get(AccessKeyService).create(username, { name: 'test' });
    await a.app.get(EntitlementService).grant(username, 'acme/app', ['*']);
    return { username, key, basic: 'Basic ' + Buffer.from(`${username}:${key}`).toString('base64') };
  }

  async function login(gw: TestGateway, basic: string): Promise<{ status: number; token?: string }> {
    const res = await fetch(`${gw.url}/auth/token?service=${SERVICE}`, { headers: { authorization: basic } });
    const body = (await res.json()) as { token?: string };
    return { status: res.status, token: body.token };
  }

  const ping = async (gw: TestGateway, token: string) =>
    (await fetch(`${gw.url}/v2/`, { headers: { authorization: `Bearer ${token}` } })).status;

  it('a key enrolled through one replica logs in on the other, and a token from one is good on both', async () => {
    const who = await member();
    const fromB = await login(b, who.basic);
    expect(fromB.status).toBe(200);
    expect(await ping(a, fromB.token!)).toBe(200);
    expect(await ping(b, fromB.token!)).toBe(200);
  });

  it('counts /v2/ requests of both replicas together: 60 at RATE_LIMIT_V2_PER_MEMBER=40 let 40 through', async () => {
    const who = await member();
    const { token } = await login(a, who.basic);
    const statuses = await Promise.all(Array.from({ length: 60 }, (_, i) => ping(i % 2 ? a : b, token!)));
    expect(statuses.filter((s) => s === 200)).toHaveLength(40);
    expect(statuses.filter((s) => s === 429)).toHaveLength(20);
  });

  it('counts failed logins of both replicas together', async () => {
    const who = await member();
    const wrong = 'Basic ' + Buffer.from(`${who.username}:gh_${'0'.repeat(43)}`).toString('base64');
    expect((await login(a, wrong)).status).toBe(401);
    expect((await login(b, wrong)).status).toBe(401);
    expect((await login(a, wrong)).status).toBe(401);
    // Three failures of this (username, IP) over two replicas: both refuse the pair now.
    expect((await login(b, who.basic)).status).toBe(429);
    expect((await login(a, who.basic)).status).toBe(429);
  });

  /** The built gateway on a's database with `files`; resolves with its exit code and output. */
  async function startBuilt(files: { signing: string; accessKey: string }, label: string) {
    const port = await getFreePort();
    const gw = startBuiltGateway({
      ...env(files),
      PORT: String(port),
      HOST: '127.0.0.1',
      DATA_DIR: join(secrets.path, `data-${label}`),
      DATABASE_URL: a.databaseUrl,
      LOG_LEVEL: 'error',
    });
    const code = await gw.exited;
    return { code, lines: gw.output().trim().split('\n') };
  }

  it('refuses to start a replica whose secrets differ from the recorded ones, in one line naming the variable', async () => {
    const other = await secretFiles(secrets.path, 'other');
    const signing = await startBuilt(other, 'c');
    expect(signing.code).toBe(1);
    expect(signing.lines).toHaveLength(1);
    expect(signing.lines[0]).toMatch(
      /^gatehouse: failed to start: TOKEN_SIGNING_KEY_FILE \S+ differs from the secret the other replicas .* Fix: give every replica the same TOKEN_SIGNING_KEY_FILE/,
    );
    const accessKey = await startBuilt(
      { signing: a.config.auth.signingKeyFile, accessKey: other.accessKey },
      'd',
    );
    expect(accessKey.code).toBe(1);
    expect(accessKey.lines).toEqual([
      expect.stringMatching(
        /^gatehouse: failed to start: ACCESS_KEY_SECRET_FILE \S+ differs from the secret/,
      ),
    ]);
  });
});
