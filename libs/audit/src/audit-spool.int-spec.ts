import { INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { randomBytes, randomUUID } from 'node:crypto';
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
import { AppLogger, createPinoLogger, MetricsService, ObservabilityModule } from '@gatehouse/observability';
import { AuditEvent, AuditModule, AuditService, createAuditSpool, spoolLine } from '@gatehouse/audit';

const logger = new AppLogger(createPinoLogger('silent'));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits for something real to happen (a write, a spool file): polls instead of guessing a delay. */
async function waitFor(
  what: string,
  done: () => boolean | Promise<boolean>,
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

async function metricValue(metrics: MetricsService, name: string): Promise<number> {
  const m = await metrics.registry.getSingleMetric(name)!.get();
  return m.values.reduce((sum, v) => sum + v.value, 0);
}

function segments(dir: string): string[] {
  return fs.existsSync(dir) ? fs.readdirSync(dir).filter((n) => n.endsWith('.jsonl')) : [];
}

/**
 * The spool against a PostgreSQL cluster of its own, so the server can be stopped in the middle
 * of recording and started again: the real failure, no mocks.
 */
describe('audit spool while PostgreSQL goes away and comes back', () => {
  let root: string;
  let cluster: PostgresCluster;
  const password = randomBytes(8).toString('hex');

  async function countRows(where: string): Promise<{ n: number; ids: number }> {
    const c = new Client({ connectionString: cluster.url('postgres') });
    await c.connect();
    try {
      const { rows } = await c.query(
        `SELECT count(*)::int AS n, count(DISTINCT id)::int AS ids FROM audit_events WHERE ${where}`,
      );
      return rows[0];
    } finally {
      await c.end();
    }
  }

  function boot(dataDir: string): Promise<INestApplicationContext> {
    return NestFactory.createApplicationContext(
      {
        module: class AuditSpoolTestModule {},
        imports: [
          ConfigModule.forRoot(
            loadGatewayConfig({ DATABASE_URL: cluster.url('postgres'), DATA_DIR: dataDir }),
          ),
          ObservabilityModule.forRoot(logger),
          DatabaseModule.forRoot({ retryAttempts: 1 }),
          AuditModule.withOptions({
            flushIntervalMs: 20,
            retryMinMs: 50,
            retryMaxMs: 200,
            shutdownTimeoutMs: 500,
          }),
        ],
      },
      { logger: false },
    );
  }

  beforeAll(async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'gatehouse-audit-spool-'));
    fs.chmodSync(root, 0o755);
    cluster = new PostgresCluster({
      dataDir: path.join(root, 'pg'),
      password,
      port: await freePort(),
      settings: { fsync: 'off' },
    });
    await cluster.initialise();
    await cluster.start();
    const ds = await new DataSource(createDataSourceOptions(cluster.url('postgres'), 1)).initialize();
    await runMigrations(ds);
    await ds.destroy();
  });
  afterAll(async () => {
    await cluster?.stop();
    fs.rmSync(root, { recursive: true, force: true });
  });

  it('stores every event exactly once when the server stops in the middle of recording', async () => {
    const spoolDir = path.join(root, 'outage-spool');
    const dataSource = await new DataSource({
      ...createDataSourceOptions(cluster.url('postgres'), 2, [AuditEvent]),
      extra: { max: 2, connectionTimeoutMillis: 1_000 },
    }).initialize();
    const metrics = new MetricsService();
    const options = { flushIntervalMs: 20, batchSize: 50, retryMinMs: 50, retryMaxMs: 200, spoolDir };
    const audit = new AuditService(
      dataSource,
      metrics,
      logger,
      options,
      undefined,
      createAuditSpool(options),
    );
    let recorded = 0;
    const recordSome = (k: number) => {
      for (let i = 0; i < k; i++)
        audit.record({ action: 'blob.get', outcome: 'allowed', requestId: 'mid-outage', bytes: recorded++ });
    };
    // Requests keep coming the whole time, as they would in a running gateway.
    const traffic = setInterval(() => recordSome(7), 5);
    try {
      // Some events stored before the outage.
      await waitFor(
        'events stored before the outage',
        async () => (await metricValue(metrics, 'gatehouse_audit_events_written_total')) > 50,
      );
      await cluster.stop();
      await waitFor(
        'events spooled during the outage',
        async () =>
          segments(spoolDir).length > 0 &&
          (await metricValue(metrics, 'gatehouse_audit_events_spooled_total')) > 100,
      );
      expect(await metricValue(metrics, 'gatehouse_audit_events_spooled_total')).toBeGreaterThan(0);
      // The memory queue does not grow with the outage: the writer moves it to disk.
      expect(audit.pending).toBeLessThan(200);
      await cluster.start();
      // Traffic goes on while the spool is replayed into the returned server.
      const before = await metricValue(metrics, 'gatehouse_audit_events_written_total');
      await waitFor(
        'writes after the restart',
        async () => (await metricValue(metrics, 'gatehouse_audit_events_written_total')) > before + 50,
      );
    } finally {
      clearInterval(traffic);
    }
    expect(await audit.flush(20_000)).toBe(true);
    expect(await countRows(`request_id = 'mid-outage'`)).toEqual({ n: recorded, ids: recorded });
    const [range] = (await dataSource.query(
      `SELECT min(bytes)::int AS lo, max(bytes)::int AS hi FROM audit_events WHERE request_id = 'mid-outage'`,
    )) as Array<{ lo: number; hi: number }>;
    expect(range).toEqual({ lo: 0, hi: recorded - 1 });
    expect(segments(spoolDir)).toEqual([]);
    expect(await metricValue(metrics, 'gatehouse_audit_events_dropped_total')).toBe(0);
    expect(await metricValue(metrics, 'gatehouse_audit_events_written_total')).toBe(recorded);
    await audit.beforeApplicationShutdown();
    await dataSource.destroy();
  });

  it('treats a hung database like an unreachable one: spools after the write timeout, stores once after', async () => {
    const spoolDir = path.join(root, 'hung-spool');
    const dataSource = await new DataSource({
      ...createDataSourceOptions(cluster.url('postgres'), 4, [AuditEvent]),
    }).initialize();
    const metrics = new MetricsService();
    const options = {
      flushIntervalMs: 20,
      batchSize: 50,
      retryMinMs: 50,
      retryMaxMs: 200,
      writeTimeoutMs: 300,
      spoolDir,
    };
    const audit = new AuditService(
      dataSource,
      metrics,
      logger,
      options,
      undefined,
      createAuditSpool(options),
    );
    // A lock held by another session makes every INSERT wait: the server answers nothing.
    const locker = new Client({ connectionString: cluster.url('postgres') });
    await locker.connect();
    await locker.query('BEGIN');
    await locker.query('LOCK TABLE audit_events IN ACCESS EXCLUSIVE MODE');
    try {
      for (let i = 0; i < 120; i++)
        audit.record({ action: 'blob.get', outcome: 'allowed', requestId: 'hung-db', bytes: i });
      await waitFor(
        'the queue spooled after the write timeout',
        async () =>
          audit.pending === 0 && (await metricValue(metrics, 'gatehouse_audit_events_spooled_total')) > 0,
      );
      expect(await metricValue(metrics, 'gatehouse_audit_events_spooled_total')).toBeGreaterThan(0);
      expect(audit.pending).toBe(0);
    } finally {
      await locker.query('COMMIT');
      await locker.end();
    }
    expect(await audit.flush(20_000)).toBe(true);
    expect(await countRows(`request_id = 'hung-db'`)).toEqual({ n: 120, ids: 120 });
    expect(segments(spoolDir)).toEqual([]);
    expect(await metricValue(metrics, 'gatehouse_audit_events_dropped_total')).toBe(0);
    await audit.beforeApplicationShutdown();
    await dataSource.destroy();
  });

  it('replays a spool left by a crash once at start, skipping a torn last line, and never again', async () => {
    const dataDir = path.join(root, 'crashed');
    const spoolDir = path.join(dataDir, 'audit-spool');
    fs.mkdirSync(spoolDir, { recursive: true });
    const events = Array.from({ length: 40 }, (_, i) =>
      Object.assign(new AuditEvent(), {
        id: randomUUID(),
        occurredAt: new Date(Date.UTC(2030, 0, 1, 0, 0, i)),
        action: 'manifest.get',
        outcome: i % 2 ? 'allowed' : 'denied',
        reason: i % 2 ? null : 'tag_not_entitled',
        requestId: 'from-spool',
        username: 'carol',
        details: { i },
      }),
    );
    const lines = events.map(spoolLine).join('');
    // The crash cut the last line of the newest segment short.
    const torn = spoolLine({ ...events[0], id: randomUUID() } as AuditEvent).slice(0, 30);
    const at = (i: number) =>
      events
        .slice(i === 0 ? 0 : 15, i === 0 ? 15 : 40)
        .map(spoolLine)
        .join('');
    fs.writeFileSync(path.join(spoolDir, `001767225600000-0badcafe-0.jsonl`), at(0));
    fs.writeFileSync(path.join(spoolDir, `001767225600001-0badcafe-1.jsonl`), at(1) + torn);

    const first = await boot(dataDir);
    try {
      expect(await first.get(AuditService).flush(20_000)).toBe(true);
      expect(await countRows(`request_id = 'from-spool'`)).toEqual({ n: 40, ids: 40 });
      expect(segments(spoolDir)).toEqual([]);
      const metrics = first.get(MetricsService);
      expect(await metricValue(metrics, 'gatehouse_audit_spool_torn_lines_total')).toBe(1);
      expect(await metricValue(metrics, 'gatehouse_audit_events_written_total')).toBe(40);
      expect(await metricValue(metrics, 'gatehouse_audit_events_dropped_total')).toBe(0);
    } finally {
      await first.close();
    }
    expect(fs.readdirSync(spoolDir)).toEqual([]);

    // A crash after the commit but before the delete leaves the same events on disk again.
    fs.writeFileSync(path.join(spoolDir, `001767225600002-0badcafe-2.jsonl`), lines);
    const second = await boot(dataDir);
    try {
      expect(await second.get(AuditService).flush(20_000)).toBe(true);
      expect(segments(spoolDir)).toEqual([]);
      expect(await metricValue(second.get(MetricsService), 'gatehouse_audit_events_written_total')).toBe(0);
    } finally {
      await second.close();
    }
    const third = await boot(dataDir);
    await third.get(AuditService).flush(20_000);
    await third.close();
    expect(await countRows(`request_id = 'from-spool'`)).toEqual({ n: 40, ids: 40 });
  });

  it('spools what is queued when the server is away at shutdown, and stores it at the next start', async () => {
    const dataDir = path.join(root, 'shutdown');
    const spoolDir = path.join(dataDir, 'audit-spool');
    const app = await boot(dataDir);
    const metrics = app.get(MetricsService);
    await cluster.stop();
    try {
      for (let i = 0; i < 30; i++)
        app.get(AuditService).record({ action: 'token.issue', outcome: 'allowed', requestId: 'at-stop' });
    } finally {
      await app.close();
    }
    expect(await metricValue(metrics, 'gatehouse_audit_events_dropped_total')).toBe(0);
    expect(await metricValue(metrics, 'gatehouse_audit_events_spooled_total')).toBe(30);
    const spooled = segments(spoolDir)
      .map((n) => fs.readFileSync(path.join(spoolDir, n), 'utf8'))
      .join('')
      .trim()
      .split('\n');
    expect(spooled).toHaveLength(30);
    expect(fs.existsSync(path.join(spoolDir, 'owner.lock'))).toBe(false);

    await cluster.start();
    const next = await boot(dataDir);
    try {
      expect(await next.get(AuditService).flush(20_000)).toBe(true);
    } finally {
      await next.close();
    }
    expect(await countRows(`request_id = 'at-stop'`)).toEqual({ n: 30, ids: 30 });
    expect(segments(spoolDir)).toEqual([]);
  });
});
