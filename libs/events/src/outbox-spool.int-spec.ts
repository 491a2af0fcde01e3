import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DataSource } from 'typeorm';
import { AuditEvent, AuditService, createAuditSpool } from '@gatehouse/audit';
import { createDataSourceOptions, freePort, PostgresCluster, runMigrations } from '@gatehouse/database';
import { AppLogger, createPinoLogger, MetricsService } from '@gatehouse/observability';
import { EventsMetrics } from './events.metrics';
import { OutboxSink } from './outbox.sink';

const logger = new AppLogger(createPinoLogger('silent'));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The outbox rides on the audit writer: with PostgreSQL stopped in the middle of recording, the
 * audit rows go to the spool and their events are written when it is replayed, each exactly once,
 * with the audit row's id. A PostgreSQL cluster of its own, stopped and started for real.
 */
describe('event outbox through an audit spool replay', () => {
  let root: string;
  let cluster: PostgresCluster;

  beforeAll(async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'gatehouse-outbox-spool-'));
    fs.chmodSync(root, 0o755);
    cluster = new PostgresCluster({
      dataDir: path.join(root, 'pg'),
      password: randomBytes(8).toString('hex'),
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

  it('writes one event per audit row, spooled or not, with the row id', async () => {
    const spoolDir = path.join(root, 'spool');
    const dataSource = await new DataSource({
      ...createDataSourceOptions(cluster.url('postgres'), 2, [AuditEvent]),
      extra: { max: 2, connectionTimeoutMillis: 1_000 },
    }).initialize();
    const metrics = new MetricsService();
    const options = { flushIntervalMs: 20, batchSize: 50, retryMinMs: 50, retryMaxMs: 200, spoolDir };
    const sink = new OutboxSink('test', false, new EventsMetrics(metrics));
    const audit = new AuditService(
      dataSource,
      metrics,
      logger,
      options,
      undefined,
      createAuditSpool(options),
      sink,
    );
    let recorded = 0;
    const record = () =>
      audit.record({
        action: 'token.issue',
        outcome: 'allowed',
        requestId: 'outbox-spool',
        bytes: recorded++,
      });
    for (let i = 0; i < 30; i++) record();
    expect(await audit.flush(20_000)).toBe(true);
    await cluster.stop();
    for (let i = 0; i < 60; i++) record();
    const deadline = Date.now() + 20_000;
    while (
      !fs.existsSync(spoolDir) ||
      fs.readdirSync(spoolDir).filter((n) => n.endsWith('.jsonl')).length === 0
    ) {
      if (Date.now() > deadline) throw new Error('nothing was spooled');
      await sleep(20);
    }
    await cluster.start();
    expect(await audit.flush(30_000)).toBe(true);
    const rows = (await dataSource.query(
      `SELECT count(a.id)::int AS audit, count(o.id)::int AS events, count(DISTINCT o.id)::int AS distinct_events,
              count(*) FILTER (WHERE o.type = 'login.issued')::int AS typed
         FROM audit_events a LEFT JOIN event_outbox o ON o.id = a.id WHERE a.request_id = 'outbox-spool'`,
    )) as Array<Record<string, number>>;
    expect(rows[0]).toEqual({ audit: 90, events: 90, distinct_events: 90, typed: 90 });
    await audit.beforeApplicationShutdown();
    await dataSource.destroy();
  });
});
