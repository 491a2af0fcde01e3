import { INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { ConfigModule, loadGatewayConfig } from '@gatehouse/config';
import {
  createDataSourceOptions,
  DatabaseModule,
  freePort,
  PostgresCluster,
  runMigrations,
} from '@gatehouse/database';
import {
  AppLogger,
  createPinoLogger,
  MetricsService,
  ObservabilityModule,
  RequestContext,
} from '@gatehouse/observability';
import { createTestDatabase, TestDatabase } from '@gatehouse/testing';
import { AuditEvent, AuditModule, AuditQueryService, AuditService } from '@gatehouse/audit';

const logger = new AppLogger(createPinoLogger('silent'));

async function rows(url: string, sql: string): Promise<Array<Record<string, unknown>>> {
  const c = new Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query(sql)).rows;
  } finally {
    await c.end();
  }
}

async function metricValue(metrics: MetricsService, name: string): Promise<number> {
  const m = await metrics.registry.getSingleMetric(name)!.get();
  return m.values.reduce((sum, v) => sum + v.value, 0);
}

describe('AuditModule in a Nest application', () => {
  let db: TestDatabase;
  let app: INestApplicationContext;
  let dataDir: string;

  beforeAll(async () => {
    db = await createTestDatabase({ migrate: false });
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatehouse-audit-'));
    const config = loadGatewayConfig({ DATABASE_URL: db.url, DATA_DIR: dataDir });
    app = await NestFactory.createApplicationContext(
      {
        module: class AuditTestModule {},
        imports: [
          ConfigModule.forRoot(config),
          ObservabilityModule.forRoot(logger),
          // migrateOnStart comes from config (default true): the schema is created at start.
          DatabaseModule.forRoot(),
          AuditModule.withOptions({ flushIntervalMs: 50, batchSize: 500 }),
        ],
      },
      { logger: false },
    );
  });
  afterAll(async () => {
    await app?.close();
    await db?.drop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('writes events in batches of one INSERT each and stores each exactly once', async () => {
    const audit = app.get(AuditService);
    const dataSource = app.get(DataSource);
    const query = jest.spyOn(dataSource.manager, 'query');
    const inserts = () => query.mock.calls.filter(([sql]) => sql.startsWith('INSERT INTO "audit_events"'));
    RequestContext.run(
      {
        requestId: 'req-batch',
        clientIp: '203.0.113.9',
        userAgent: 'docker/27',
        memberId: undefined,
        username: 'alice',
      },
      () => {
        for (let i = 0; i < 1200; i++)
          audit.record({ action: 'blob.get', outcome: 'allowed', bytes: i, cache: 'hit' });
      },
    );
    expect(audit.pending).toBe(1200);
    expect(await audit.flush()).toBe(true);
    expect(audit.pending).toBe(0);
    expect(inserts()).toHaveLength(3);
    query.mockRestore();
    // A second flush has nothing to write and writes nothing twice.
    expect(await audit.flush()).toBe(true);
    const [count] = await rows(
      db.url,
      `SELECT count(*)::int AS n, count(DISTINCT id)::int AS ids, min(request_id) AS rid, min(username) AS u,
              min(client_ip) AS ip, min(user_agent) AS ua, sum(bytes)::bigint AS b FROM audit_events WHERE request_id = 'req-batch'`,
    );
    expect(count).toEqual({
      n: 1200,
      ids: 1200,
      rid: 'req-batch',
      u: 'alice',
      ip: '203.0.113.9',
      ua: 'docker/27',
      b: String((1199 * 1200) / 2),
    });
    expect(
      await metricValue(app.get(MetricsService), 'gatehouse_audit_events_written_total'),
    ).toBeGreaterThanOrEqual(1200);
  });

  it('keeps every value as written, and drops only the row the database refuses as data', async () => {
    const audit = app.get(AuditService);
    const metrics = app.get(MetricsService);
    const droppedBefore = await metricValue(metrics, 'gatehouse_audit_events_dropped_total');
    const odd = 'quote " backslash \\ tab \t ünïcödé 🐳 {"json": [1]}';
    audit.record({
      action: 'blob.get',
      outcome: 'allowed',
      requestId: 'req-cells',
      reason: odd,
      bytes: 2 ** 40,
      details: { nested: { list: [1, 'two', null] }, text: odd },
    });
    // An integer column given a value beyond its range: refused as data (SQLSTATE 22003).
    audit.record({ action: 'blob.get', outcome: 'allowed', requestId: 'req-cells', httpStatus: 2 ** 40 });
    audit.record({ action: 'blob.get', outcome: 'denied', requestId: 'req-cells', httpStatus: 403 });
    expect(await audit.flush()).toBe(true);
    const stored = await rows(
      db.url,
      `SELECT outcome, reason, bytes, http_status AS status, details FROM audit_events
        WHERE request_id = 'req-cells' ORDER BY outcome`,
    );
    expect(stored).toEqual([
      {
        outcome: 'allowed',
        reason: odd,
        bytes: String(2 ** 40),
        status: null,
        details: { nested: { list: [1, 'two', null] }, text: odd },
      },
      { outcome: 'denied', reason: null, bytes: null, status: 403, details: null },
    ]);
    expect(await metricValue(metrics, 'gatehouse_audit_events_dropped_total')).toBe(droppedBefore + 1);
  });

  it('writes within the flush interval without an explicit flush', async () => {
    const audit = app.get(AuditService);
    audit.record({ action: 'token.issue', outcome: 'allowed', requestId: 'req-timer', username: 'bob' });
    const deadline = Date.now() + 5_000;
    let found: unknown[] = [];
    while (found.length === 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 25));
      found = await rows(db.url, `SELECT id FROM audit_events WHERE request_id = 'req-timer'`);
    }
    expect(found).toHaveLength(1);
  });

  it('finds events by every filter, newest first', async () => {
    const audit = app.get(AuditService);
    const query = app.get(AuditQueryService);
    const t0 = new Date('2030-01-01T00:00:00Z');
    const at = (s: number) => new Date(t0.getTime() + s * 1000);
    const common = { requestId: 'req-q', clientIp: '198.51.100.1' };
    audit.record({
      ...common,
      action: 'token.refuse',
      outcome: 'denied',
      reason: 'bad_credentials',
      username: 'carol',
      occurredAt: at(1),
      httpStatus: 401,
    });
    audit.record({
      ...common,
      action: 'manifest.get',
      outcome: 'denied',
      reason: 'tag_not_entitled',
      username: 'carol',
      repository: 'acme/app',
      reference: 'v2',
      occurredAt: at(2),
      details: { scopes: ['repository:acme/app:pull'] },
    });
    audit.record({
      ...common,
      action: 'manifest.get',
      outcome: 'allowed',
      username: 'carol',
      repository: 'acme/app',
      reference: 'v1',
      digest: 'sha256:' + 'a'.repeat(64),
      occurredAt: at(3),
    });
    audit.record({
      ...common,
      action: 'blob.get',
      outcome: 'allowed',
      username: 'dave',
      repository: 'acme/other',
      occurredAt: at(4),
      bytes: 2 ** 40,
    });
    await audit.flush();

    const refs = (events: AuditEvent[]) =>
      events.map((e) => `${e.action}:${e.reference ?? e.repository ?? e.reason}`);
    expect(refs(await query.find({ requestId: 'req-q' }))).toEqual([
      'blob.get:acme/other',
      'manifest.get:v1',
      'manifest.get:v2',
      'token.refuse:bad_credentials',
    ]);
    expect(refs(await query.find({ username: 'CAROL', repository: 'acme/app' }))).toEqual([
      'manifest.get:v1',
      'manifest.get:v2',
    ]);
    expect(
      refs(await query.find({ username: 'carol', outcome: 'denied', reason: 'tag_not_entitled' })),
    ).toEqual(['manifest.get:v2']);
    expect(refs(await query.find({ requestId: 'req-q', action: 'token.refuse' }))).toEqual([
      'token.refuse:bad_credentials',
    ]);
    expect(refs(await query.find({ requestId: 'req-q', since: at(2), until: at(4) }))).toEqual([
      'manifest.get:v1',
      'manifest.get:v2',
    ]);
    expect(refs(await query.find({ requestId: 'req-q', limit: 1 }))).toEqual(['blob.get:acme/other']);

    const [denied] = await query.find({ requestId: 'req-q', reason: 'tag_not_entitled' });
    expect(denied).toMatchObject({
      username: 'carol',
      clientIp: '198.51.100.1',
      details: { scopes: ['repository:acme/app:pull'] },
    });
    expect(denied.occurredAt).toEqual(at(2));
    const [blob] = await query.find({ username: 'dave' });
    expect(blob.bytes).toBe(2 ** 40);
  });
});

describe('AuditService while the database is unreachable', () => {
  let root: string;
  let cluster: PostgresCluster;
  let port: number;
  let dataSource: DataSource;
  const password = randomBytes(8).toString('hex');

  beforeAll(async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'gatehouse-audit-outage-'));
    fs.chmodSync(root, 0o755);
    port = await freePort();
    cluster = new PostgresCluster({
      dataDir: path.join(root, 'pg'),
      password,
      port,
      settings: { fsync: 'off' },
    });
    await cluster.initialise();
    await cluster.start();
    dataSource = await new DataSource({
      ...createDataSourceOptions(cluster.url('postgres'), 2, [AuditEvent]),
      extra: { max: 2, connectionTimeoutMillis: 1_000 },
    }).initialize();
    await runMigrations(dataSource);
  });
  afterAll(async () => {
    await dataSource?.destroy().catch(() => undefined);
    await cluster?.stop();
    fs.rmSync(root, { recursive: true, force: true });
  });

  it('keeps events queued during the outage and writes each exactly once when it returns', async () => {
    const metrics = new MetricsService();
    const audit = new AuditService(dataSource, metrics, logger, {
      flushIntervalMs: 20,
      retryMinMs: 50,
      retryMaxMs: 200,
    });
    audit.record({ action: 'manifest.get', outcome: 'allowed', requestId: 'before' });
    expect(await audit.flush(10_000)).toBe(true);

    await cluster.stop();
    for (let i = 0; i < 25; i++)
      audit.record({ action: 'blob.get', outcome: 'allowed', requestId: 'during' });
    expect(await audit.flush(1_500)).toBe(false);
    expect(audit.pending).toBe(25);
    expect(await metricValue(metrics, 'gatehouse_audit_queue_depth')).toBe(25);

    await cluster.start();
    expect(await audit.flush(20_000)).toBe(true);
    expect(audit.pending).toBe(0);
    const [r] = await rows(
      cluster.url('postgres'),
      `SELECT count(*)::int AS n, count(DISTINCT id)::int AS ids FROM audit_events WHERE request_id = 'during'`,
    );
    expect(r).toEqual({ n: 25, ids: 25 });
    expect(await metricValue(metrics, 'gatehouse_audit_events_dropped_total')).toBe(0);
    expect(await metricValue(metrics, 'gatehouse_audit_events_written_total')).toBe(26);
  });

  it('drops and counts events beyond the queue bound instead of growing without limit', async () => {
    const metrics = new MetricsService();
    const audit = new AuditService(dataSource, metrics, logger, {
      maxQueue: 5,
      flushIntervalMs: 20,
      retryMinMs: 50,
      retryMaxMs: 200,
    });
    await cluster.stop();
    for (let i = 0; i < 8; i++)
      audit.record({ action: 'blob.get', outcome: 'allowed', requestId: 'bounded', bytes: i });
    expect(audit.pending).toBe(5);
    expect(await metricValue(metrics, 'gatehouse_audit_events_dropped_total')).toBe(3);

    await cluster.start();
    expect(await audit.flush(20_000)).toBe(true);
    const stored = await rows(
      cluster.url('postgres'),
      `SELECT bytes FROM audit_events WHERE request_id = 'bounded' ORDER BY bytes`,
    );
    // The oldest events are kept; the newest were refused.
    expect(stored.map((s) => Number(s.bytes))).toEqual([0, 1, 2, 3, 4]);
  });

  it('never throws into the caller, even for an unusable event', () => {
    const metrics = new MetricsService();
    const audit = new AuditService(dataSource, metrics, logger);
    expect(() => audit.record(null as unknown as never)).not.toThrow();
    return expect(metricValue(metrics, 'gatehouse_audit_events_dropped_total')).resolves.toBe(1);
  });
});
