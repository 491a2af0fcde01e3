import { createTestDatabase, TestDatabase } from '@gatehouse/testing';
import { startBuiltGateway } from '@gatehouse/testing/gateway';
import { getFreePort } from '@gatehouse/testing/upstream';

interface LogLine {
  level: string;
  msg: string;
}

/** What the built gateway says at start, as an operator reads it in `docker compose logs`. */
describe('the start log of the built gateway', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    await db?.drop();
  });

  async function startLog(env: Record<string, string>, port: number): Promise<LogLine[]> {
    const gw = startBuiltGateway({ DATABASE_URL: db.url, HOST: '127.0.0.1', PORT: String(port), ...env });
    try {
      await gw.waitUntilHealthy(`http://127.0.0.1:${port}`);
    } finally {
      gw.child.kill('SIGTERM');
      await gw.exited;
    }
    return gw
      .output()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as LogLine);
  }

  it('warns when an http gateway advertises an https realm (the default for a set OCI_REGISTRY_SERVICE)', async () => {
    const port = await getFreePort();
    const lines = await startLog({ OCI_REGISTRY_SERVICE: `localhost:${port}` }, port);
    const realm = lines.filter((l) => l.msg.includes("cannot be this gateway's own listener"));
    expect(realm).toHaveLength(1);
    expect(realm[0].level).toBe('warn');
    expect(realm[0].msg).toContain(`OCI_REGISTRY_REALM https://localhost:${port}/auth/token`);
    expect(realm[0].msg).toMatch(/OCI_REGISTRY_SERVICE/);
    expect(realm[0].msg).toMatch(/it is https but this gateway serves plain http/);
    expect(realm[0].msg).toContain(
      `Fix: for a local check set OCI_REGISTRY_REALM=http://localhost:${port}/auth/token`,
    );
    expect(realm[0].msg).toMatch(/TRUST_PROXY/);
    // Without FORGEJO_* the registry is disabled: said once, not once per module.
    expect(lines.filter((l) => /registry disabled/i.test(l.msg))).toHaveLength(1);
  });

  it('starts without that warning when the realm is its own http listener, or a proxy is declared', async () => {
    const port = await getFreePort();
    const own = await startLog(
      {
        OCI_REGISTRY_SERVICE: `localhost:${port}`,
        OCI_REGISTRY_REALM: `http://localhost:${port}/auth/token`,
      },
      port,
    );
    expect(own.filter((l) => l.msg.includes('own listener'))).toEqual([]);
    const proxied = await startLog(
      { OCI_REGISTRY_SERVICE: 'registry.example.com', TRUST_PROXY: 'loopback' },
      port,
    );
    expect(proxied.filter((l) => l.msg.includes('own listener'))).toEqual([]);
  });
});
