import { chmod } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { Client } from 'pg';
import { AccessKeyService, MemberService } from '@gatehouse/members';
import { createTestDatabase, TestDatabase } from '@gatehouse/testing';
import { BuiltGateway, createTestGateway, startBuiltGateway } from '@gatehouse/testing/gateway';
import { getFreePort, makeTempDir, TempDir } from '@gatehouse/testing/upstream';

/** The attacker's address: a second loopback address, so the gateway sees a different client IP. */
const ATTACKER = '127.0.0.5';
const MEMBER_IP = '127.0.0.1';

/**
 * Failed logins for a username from one address must not lock the member out from another: the
 * built gateway, a real PostgreSQL, requests bound to two loopback addresses.
 */
describe('no lockout by username (built gateway)', () => {
  let db: TestDatabase;
  let tmp: TempDir;
  let gw: BuiltGateway;
  let port: number;
  let key: string;
  const username = 'dave';

  beforeAll(async () => {
    db = await createTestDatabase();
    tmp = await makeTempDir('lockout');
    await chmod(tmp.path, 0o755);
    const dataDir = join(tmp.path, 'data');
    // Enrol through the libraries on the same database and DATA_DIR (the key secret lives there).
    const setup = await createTestGateway({ databaseUrl: db.url, dataDir });
    await setup.app.get(MemberService).create(username);
    key = (await setup.app.get(AccessKeyService).create(username, { name: 't' })).key;
    await setup.app.get(MemberService).create('erin');
    await setup.close();
    port = await getFreePort();
    gw = startBuiltGateway({
      PORT: String(port),
      HOST: '127.0.0.1',
      DATA_DIR: dataDir,
      DATABASE_URL: db.url,
      OCI_REGISTRY_SERVICE: `127.0.0.1:${port}`,
      OCI_REGISTRY_REALM: `http://127.0.0.1:${port}/auth/token`,
      FORGEJO_BASE_URL: 'http://127.0.0.1:9',
      FORGEJO_API_TOKEN: 'a'.repeat(40),
      LOG_LEVEL: 'warn',
      RATE_LIMIT_TOKEN_PER_IP: '0',
      AUTH_FAILED_LOGINS_PER_USERNAME: '3',
      AUTH_FAILED_LOGINS_PER_IP: '8',
      AUTH_FAILED_LOGIN_WINDOW_SECONDS: '300',
    });
    await gw.waitUntilHealthy(`http://127.0.0.1:${port}`);
  });

  afterAll(async () => {
    if (gw && gw.child.exitCode === null) {
      gw.child.kill('SIGTERM');
      await gw.exited;
    }
    await db?.drop();
    await tmp?.cleanup();
  });

  /** GET /auth/token with Basic credentials from `from`. */
  const login = (from: string, user: string, password: string) =>
    new Promise<{ status: number; retryAfter?: string; body: string }>((resolve, reject) => {
      const auth = 'Basic ' + Buffer.from(`${user}:${password}`).toString('base64');
      const req = httpRequest(
        {
          host: '127.0.0.1',
          port,
          localAddress: from,
          path: `/auth/token?service=127.0.0.1:${port}`,
          headers: { authorization: auth, connection: 'close' },
        },
        (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (body += c));
          res.on('end', () =>
            resolve({ status: res.statusCode!, retryAfter: res.headers['retry-after'], body }),
          );
        },
      );
      req.on('error', reject);
      req.end();
    });

  it("a stranger's failures for dave do not refuse dave's correct key from another address; the stranger is refused", async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 10; i++) statuses.push((await login(ATTACKER, username, `wrong-${i}`)).status);
    // Three guesses for this (username, address), then the pair is refused before any check.
    expect(statuses).toEqual([401, 401, 401, 429, 429, 429, 429, 429, 429, 429]);

    const member = await login(MEMBER_IP, username, key);
    expect({ status: member.status, body: member.body.slice(0, 200) }).toMatchObject({ status: 200 });

    // The attacking address is refused even with the right key, and told when to retry.
    const fromAttacker = await login(ATTACKER, username, key);
    expect(fromAttacker.status).toBe(429);
    expect(Number(fromAttacker.retryAfter)).toBeGreaterThan(0);
    expect(JSON.parse(fromAttacker.body)).toEqual({
      errors: [expect.objectContaining({ code: 'TOOMANYREQUESTS' })],
    });

    // Spraying other usernames from the same address spends its IP budget (8), then every
    // username from it is refused, while the member's address still logs in.
    const spray: number[] = [];
    for (let i = 0; i < 6; i++) spray.push((await login(ATTACKER, `user-${i}`, 'x')).status);
    expect(spray).toEqual([401, 401, 401, 401, 401, 429]);
    expect((await login(ATTACKER, 'erin', 'x')).status).toBe(429);
    expect((await login(MEMBER_IP, username, key)).status).toBe(200);

    // Audit rows and the metric are kept.
    const pg = new Client({ connectionString: db.url });
    await pg.connect();
    try {
      const until = Date.now() + 15_000;
      let rows: Array<{ reason: string; client_ip: string; details: { limitedBy?: string } }> = [];
      while (Date.now() < until) {
        rows = (
          await pg.query(
            `SELECT reason, client_ip, details FROM audit_events WHERE action = 'token.refuse' AND reason = 'rate_limited'`,
          )
        ).rows;
        if (rows.length >= 10) break;
        await new Promise((r) => setTimeout(r, 200));
      }
      expect(rows.length).toBe(10);
      expect(new Set(rows.map((r) => r.client_ip))).toEqual(new Set([ATTACKER]));
      const by = (k: string) => rows.filter((r) => r.details.limitedBy === k).length;
      expect({ username_ip: by('username_ip'), ip: by('ip') }).toEqual({ username_ip: 8, ip: 2 });
    } finally {
      await pg.end();
    }
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    expect(metrics).toMatch(/gatehouse_rate_limited_total\{scope="login_username_ip"\} 8/);
    expect(metrics).toMatch(/gatehouse_rate_limited_total\{scope="login_ip"\} 2/);
  });
});
