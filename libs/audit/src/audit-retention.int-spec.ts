import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { loadGatewayConfig } from '@gatehouse/config';
import { createDataSourceOptions } from '@gatehouse/database';
import { AppLogger, createPinoLogger, ManualClock, MetricsService } from '@gatehouse/observability';
import { createTestDatabase, TestDatabase } from '@gatehouse/testing';
import { AuditRetentionScheduler, AuditRetentionService } from '@gatehouse/audit';

describe('audit retention', () => {
  let db: TestDatabase;
  let dataSource: DataSource;

  async function query(sql: string): Promise<Array<Record<string, unknown>>> {
    const c = new Client({ connectionString: db.url });
    await c.connect();
    try {
      return (await c.query(sql)).rows;
    } finally {
      await c.end();
    }
  }

  beforeAll(async () => {
    db = await createTestDatabase();
    dataSource = await new DataSource(createDataSourceOptions(db.url, 2)).initialize();
  });
  afterAll(async () => {
    await dataSource?.destroy();
    await db?.drop();
  });

  it('deletes only rows past AUDIT_RETENTION_DAYS, in batches, and counts them', async () => {
    // 23 rows 10..32 days old and 5 recent ones.
    await query(`
      INSERT INTO audit_events (id, occurred_at, action, outcome, request_id)
      SELECT gen_random_uuid(), now() - (d || ' days')::interval, 'blob.get', 'allowed', 'ret-' || d
      FROM generate_series(10, 32) d
      UNION ALL
      SELECT gen_random_uuid(), now() - (h || ' hours')::interval, 'blob.get', 'allowed', 'keep'
      FROM generate_series(1, 5) h`);
    const retention = new AuditRetentionService(dataSource);
    const cutoff = new Date(Date.now() - 30 * 86_400_000);
    expect(await retention.countOlderThan(cutoff)).toBe(3);
    expect(await retention.prune(cutoff, { batchSize: 2 })).toEqual({
      deleted: 3,
      batches: 2,
      stopped: false,
    });

    const metrics = new MetricsService();
    const scheduler = new AuditRetentionScheduler(
      retention,
      loadGatewayConfig({ AUDIT_RETENTION_DAYS: '15' }),
      new AppLogger(createPinoLogger('silent')),
      metrics,
    );
    await scheduler.runOnce();
    let [left] = await query(
      `SELECT count(*)::int AS n, count(*) FILTER (WHERE request_id = 'keep')::int AS kept FROM audit_events`,
    );
    // 15..29 days old are gone; 10..14 days old and the recent five remain.
    expect(left).toEqual({ n: 10, kept: 5 });

    // The cutoff is read on the injected clock: two days later the 13- and 14-day-old rows are past 15 days.
    const later = new ManualClock(Date.now() + 2 * 86_400_000 + 3_600_000);
    const laterScheduler = new AuditRetentionScheduler(
      retention,
      loadGatewayConfig({ AUDIT_RETENTION_DAYS: '15' }),
      new AppLogger(createPinoLogger('silent')),
      new MetricsService(),
      later,
    );
    await laterScheduler.runOnce();
    [left] = await query(
      `SELECT count(*)::int AS n, count(*) FILTER (WHERE request_id = 'keep')::int AS kept FROM audit_events`,
    );
    expect(left).toEqual({ n: 8, kept: 5 });
    await laterScheduler.onApplicationShutdown();
    const pruned = await metrics.registry.getSingleMetric('gatehouse_audit_events_pruned_total')!.get();
    expect(pruned.values[0].value).toBe(15);

    // A stop request ends a prune between batches.
    let batches = 0;
    const stopped = await retention.prune(new Date(), { batchSize: 1, shouldStop: () => ++batches > 2 });
    expect(stopped).toEqual({ deleted: 2, batches: 2, stopped: true });
    await scheduler.onApplicationShutdown();
  });
});
