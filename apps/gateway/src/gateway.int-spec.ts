import { chmodSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { AuditQueryService, AuditService } from '@gatehouse/audit';
import { createTestGateway, startBuiltGateway, TestGateway } from '@gatehouse/testing/gateway';
import { getFreePort, makeTempDir, TempDir } from '@gatehouse/testing/upstream';

describe('the built gateway', () => {
  let tmp: TempDir;
  beforeAll(async () => {
    tmp = await makeTempDir('built-gateway');
    // The embedded PostgreSQL runs as the unprivileged postgres user when started by root.
    chmodSync(tmp.path, 0o755);
  });
  afterAll(() => tmp.cleanup());

  it('starts on embedded PostgreSQL with the registry disabled, answers health, readiness and metrics, and stops cleanly', async () => {
    const port = await getFreePort();
    const dataDir = join(tmp.path, 'data');
    const gw = startBuiltGateway({ PORT: String(port), HOST: '127.0.0.1', DATA_DIR: dataDir });
    try {
      await gw.waitUntilHealthy(`http://127.0.0.1:${port}`);
      const health = await fetch(`http://127.0.0.1:${port}/healthz`);
      expect(health.status).toBe(200);

      const ready = await fetch(`http://127.0.0.1:${port}/readyz`);
      expect(ready.status).toBe(503);
      const readyBody = (await ready.json()) as {
        details: Record<string, { status: string; message?: string }>;
      };
      expect(readyBody.details.database.status).toBe('up');
      expect(readyBody.details.cacheDir.status).toBe('up');
      expect(readyBody.details.upstream).toMatchObject({ status: 'down' });
      expect(readyBody.details.upstream.message).toMatch(/FORGEJO_BASE_URL and FORGEJO_API_TOKEN/);

      const v2 = await fetch(`http://127.0.0.1:${port}/v2/`);
      expect(v2.status).toBe(503);
      expect(v2.headers.get('docker-distribution-api-version')).toBe('registry/2.0');
      const body = (await v2.json()) as { errors: Array<{ code: string; message: string }> };
      expect(body.errors[0].code).toBe('UNAVAILABLE');
      expect(body.errors[0].message).toMatch(/FORGEJO_BASE_URL and FORGEJO_API_TOKEN/);

      const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      expect(metrics).toMatch(/process_resident_memory_bytes/);
      expect(metrics).toMatch(
        /gatehouse_http_request_duration_seconds_count\{method="GET",route="\/v2\/ping",status_code="503"\} 1/,
      );

      expect(gw.output()).toMatch(/Registry disabled: set FORGEJO_BASE_URL and FORGEJO_API_TOKEN/);
      expect(gw.output()).toMatch(/embedded PostgreSQL started/);
      expect(existsSync(join(dataDir, 'postgres', 'PG_VERSION'))).toBe(true);
    } finally {
      gw.child.kill('SIGTERM');
    }
    expect(await gw.exited).toBe(0);
    expect(gw.output()).toMatch(/embedded PostgreSQL stopped/);
    expect(existsSync(join(dataDir, 'postgres', 'postmaster.pid'))).toBe(false);
  });

  it.each([
    ['https://registry.example.com/auth/token"', /OCI_REGISTRY_REALM contains a quote/],
    ['ftp://registry.example.com/token', /OCI_REGISTRY_REALM must be an http or https URL/],
  ])('refuses to start with OCI_REGISTRY_REALM=%j, naming it', async (realm, message) => {
    const gw = startBuiltGateway({
      OCI_REGISTRY_SERVICE: 'registry.example.com',
      OCI_REGISTRY_REALM: realm,
      DATA_DIR: tmp.path,
    });
    expect(await gw.exited).toBe(2);
    expect(gw.output()).toMatch(message);
    expect(gw.output()).toMatch(/Fix:/);
  });
});

describe('request ids, client addresses and metrics', () => {
  let gw: TestGateway;
  let proxied: TestGateway;

  beforeAll(async () => {
    gw = await createTestGateway();
    proxied = await createTestGateway({ env: { TRUST_PROXY: '127.0.0.1' } });
  });
  afterAll(async () => {
    await gw?.close();
    await proxied?.close();
  });

  it("always mints its own X-Request-Id, keeps a client's safe id apart, and puts both on every log line and audit row", async () => {
    const made = await fetch(`${gw.url}/v2/acme/app/manifests/v1`);
    expect(made.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    // Two requests sending the same id are still two requests to support.
    const ids: string[] = [];
    for (let i = 0; i < 2; i++) {
      const kept = await fetch(`${gw.url}/v2/acme/app/manifests/v1`, {
        headers: { 'x-request-id': 'trace-42.a' },
      });
      ids.push(kept.headers.get('x-request-id')!);
    }
    expect(ids[0]).toMatch(/^[0-9a-f-]{36}$/);
    expect(ids[1]).toMatch(/^[0-9a-f-]{36}$/);
    expect(ids[0]).not.toBe(ids[1]);
    const unsafe = await fetch(`${gw.url}/healthz`, { headers: { 'x-request-id': 'bad id;<script>' } });
    expect(unsafe.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    const lines = gw.logs.filter((l) => l.msg === 'request failed' && l.clientRequestId === 'trace-42.a');
    expect(lines.map((l) => l.requestId).sort()).toEqual([...ids].sort());
    expect(gw.logs.some((l) => l.clientRequestId === 'bad id;<script>')).toBe(false);

    // The audit row of a token request carries both ids, each in its own column.
    const bad = 'Basic ' + Buffer.from('ids-check:wrong').toString('base64');
    const refused = await fetch(`${gw.url}/auth/token?service=${gw.host}`, {
      headers: { authorization: bad, 'x-request-id': 'proxy-7' },
    });
    await gw.app.get(AuditService).flush(10_000);
    const [row] = await gw.app.get(AuditQueryService).find({ username: 'ids-check' });
    expect(row).toMatchObject({
      requestId: refused.headers.get('x-request-id'),
      clientRequestId: 'proxy-7',
    });
  });

  it('labels request durations by route template, never by raw path', async () => {
    await fetch(`${gw.url}/v2/acme/secret-project/blobs/sha256:${'a'.repeat(64)}`);
    const metrics = await (await fetch(`${gw.url}/metrics`)).text();
    expect(metrics).toMatch(/route="\/v2\/blob"/);
    expect(metrics).not.toMatch(/secret-project/);
  });

  it('believes X-Forwarded-For only from a peer in TRUST_PROXY', async () => {
    const bad = 'Basic ' + Buffer.from('nobody:wrong').toString('base64');
    for (const g of [gw, proxied]) {
      await fetch(`${g.url}/auth/token?service=${g.host}`, {
        headers: { authorization: bad, 'x-forwarded-for': '203.0.113.9', 'user-agent': 'proxy-test/1' },
      });
      await g.app.get(AuditService).flush(10_000);
    }
    const [direct] = await gw.app.get(AuditQueryService).find({ username: 'nobody' });
    const [viaProxy] = await proxied.app.get(AuditQueryService).find({ username: 'nobody' });
    expect(direct.clientIp).toBe('127.0.0.1');
    expect(viaProxy.clientIp).toBe('203.0.113.9');
    expect(viaProxy.userAgent).toBe('proxy-test/1');
  });
});
