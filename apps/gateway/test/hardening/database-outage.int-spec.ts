import { AuditQueryService, AuditService } from '@gatehouse/audit';
import { DATABASE_UNAVAILABLE_MESSAGE } from '@gatehouse/database';
import { startStoppablePostgres, StoppablePostgres } from '@gatehouse/testing/gateway';
import { seedImage } from '@gatehouse/testing/upstream';
import { HardeningStack, Member, rawRequest, startHardeningStack, waitUntil } from './hardening-stack';

const STATE_CACHE_SECONDS = 5;
/** Long enough that stopping the server on a busy machine does not outlast it; short for the test. */
const OUTAGE_GRACE_SECONDS = 5;

/**
 * PostgreSQL stopped under a running gateway, on a cluster of its own (the shared test cluster
 * must keep serving every other suite). The policy under test is written down in
 * dev-docs/security.md ("Database outage: fail closed").
 */
describe('PostgreSQL stopped during pulls', () => {
  let pg: StoppablePostgres;
  let s: HardeningStack;
  let alice: Member;
  let token: string;

  const pull = (path: string, t = token) =>
    rawRequest(s.gw.port, { path, headers: [['Authorization', `Bearer ${t}`]] });
  const login = () =>
    rawRequest(s.gw.port, {
      path: `/auth/token?service=${s.gw.host}&scope=repository:acme/app:pull`,
      headers: [['Authorization', alice.basic]],
    });
  const ready = async () => (await rawRequest(s.gw.port, { path: '/readyz' })).status;

  beforeAll(async () => {
    pg = await startStoppablePostgres('pg-outage');
    s = await startHardeningStack({
      env: {
        AUTH_STATE_CACHE_SECONDS: String(STATE_CACHE_SECONDS),
        AUTH_OUTAGE_GRACE_SECONDS: String(OUTAGE_GRACE_SECONDS),
        OCI_TAG_TTL_SECONDS: '300',
      },
      gateway: { databaseUrl: pg.url },
    });
    alice = await s.member({ 'acme/app': ['*'] });
    token = await s.token(alice, ['repository:acme/app:pull']);
  });

  afterAll(async () => {
    await s?.stop();
    await pg?.close();
  });

  it('fails closed while the database is down and recovers without a restart, losing no audit event', async () => {
    const image = seedImage(s.seed, 'acme/app', 'v1.0.0');
    const layer = image.manifests[0].layers[0];
    expect((await pull('/v2/acme/app/manifests/v1.0.0')).status).toBe(200);
    expect((await pull(`/v2/acme/app/blobs/${layer.digest}`)).status).toBe(200);
    expect(await ready()).toBe(200);

    await pg.stop();

    // A token already issued keeps working on the state checked before the outage (loaded by the
    // pulls above): the lost change listener shortens the cache to 1 s, the outage grace covers
    // the rest, however long stopping the server took…
    expect((await pull('/v2/acme/app/manifests/v1.0.0')).status).toBe(200);

    // Readiness says the database is down.
    expect(await ready()).toBe(503);
    const readyBody = JSON.parse((await rawRequest(s.gw.port, { path: '/readyz' })).body.toString()) as {
      details?: Record<string, { status: string }>;
    };
    expect(readyBody.details?.database?.status).toBe('down');

    // New logins cannot be checked: 503 UNAVAILABLE with Retry-After, never a 500, never a token.
    const refusedLogin = await login();
    expect(refusedLogin.status).toBe(503);
    expect(refusedLogin.headers['retry-after']).toMatch(/^\d+$/);
    expect(JSON.parse(refusedLogin.body.toString())).toMatchObject({
      errors: [{ code: 'UNAVAILABLE', message: DATABASE_UNAVAILABLE_MESSAGE }],
    });

    // …and once that state is older than the cache time and the grace, it is refused with 503 too.
    await new Promise((r) => setTimeout(r, (STATE_CACHE_SECONDS + OUTAGE_GRACE_SECONDS) * 1000 + 500));
    for (const path of [
      '/v2/acme/app/manifests/v1.0.0',
      `/v2/acme/app/blobs/${layer.digest}`,
      '/v2/acme/app/tags/list',
    ]) {
      const res = await pull(path);
      expect({ path, status: res.status }).toEqual({ path, status: 503 });
      expect(res.headers['retry-after']).toMatch(/^\d+$/);
      expect(JSON.parse(res.body.toString())).toMatchObject({ errors: [{ code: 'UNAVAILABLE' }] });
    }
    // Liveness is unaffected: a database blip must not get the gateway restarted.
    expect((await rawRequest(s.gw.port, { path: '/healthz' })).status).toBe(200);

    await pg.start();
    await waitUntil(async () => (await ready()) === 200, 20_000, 'readiness after the database came back');
    const again = await login();
    expect(again.status).toBe(200);
    const fresh = (JSON.parse(again.body.toString()) as { token: string }).token;
    expect((await pull('/v2/acme/app/manifests/v1.0.0', fresh)).status).toBe(200);
    expect((await pull('/v2/acme/app/manifests/v1.0.0')).status).toBe(200);

    // The refusals made during the outage reach the audit log once it is back.
    expect(await s.gw.app.get(AuditService).flush(15_000)).toBe(true);
    // (The login refused as well as the pulls; the member is not known to the pulls.)
    const during = await s.gw.app.get(AuditQueryService).find({ reason: 'database_unavailable' });
    expect(during.map((r) => r.httpStatus)).toEqual(during.map(() => 503));
    expect(new Set(during.map((r) => r.action))).toEqual(
      new Set(['token.refuse', 'manifest.get', 'blob.get', 'tags.list']),
    );

    const logs = s.gw.logs;
    expect(logs.filter((l) => l.msg === 'unhandled error')).toEqual([]);
  });
});
