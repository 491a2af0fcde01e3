// The console's analytics at 1 M audit rows (dev-docs/performance.md): a fresh database with the
// migrations, BENCH_AUDIT_ROWS rows (default 1 000 000) spread over 30 days, then each view's
// queries run in process through libs/audit, 7 times; the median and the slowest are printed.
// Run: `just bench-console` (node -r @swc-node/register bench/console-analytics.ts).
import { DataSource } from 'typeorm';
import { auditAnalytics, AuditSqlRunner } from '@gatehouse/audit';
import { createDataSourceOptions } from '@gatehouse/database';
import { createTestDatabase, startTestPostgres } from '@gatehouse/testing';
import { median, now } from './measure';

/** The rollup trigger's cost on the audit writer: batches of 100 rows, with and without it, alternated. */
async function writerCost(ds: DataSource): Promise<void> {
  const batch = (n: number) =>
    ds.query(
      `INSERT INTO audit_events (id, occurred_at, username, action, repository, reference, outcome, bytes, cache)
       SELECT gen_random_uuid(), now(), 'member-' || (i % 7), CASE WHEN i % 3 = 0 THEN 'manifest.get' ELSE 'blob.get' END,
         'acme/app-' || (i % 5), 'v1.' || (i % 4) || '.0', 'allowed', 1000, 'hit'
       FROM generate_series(1, $1::int) AS i`,
      [n],
    );
  const times: Record<'with' | 'without', number[]> = { with: [], without: [] };
  for (let round = 0; round < 100; round++) {
    for (const mode of ['with', 'without'] as const) {
      await ds.query(
        `ALTER TABLE audit_events ${mode === 'with' ? 'ENABLE' : 'DISABLE'} TRIGGER audit_daily_rollup`,
      );
      const t = now();
      await batch(100);
      times[mode].push(now() - t);
    }
  }
  await ds.query('ALTER TABLE audit_events ENABLE TRIGGER audit_daily_rollup');
  await ds.query('TRUNCATE audit_events, audit_daily_served, audit_daily_refusals, audit_daily_versions');
  console.log(
    `audit batch of 100 rows: median ${median(times.with).toFixed(1)} ms with the rollup trigger, ${median(times.without).toFixed(1)} ms without`,
  );
}

async function main(): Promise<void> {
  const rows = Number(process.env.BENCH_AUDIT_ROWS ?? 1_000_000);
  // Its own PostgreSQL server (TEST_DATABASE_URL: an existing one), migrated database.
  const pg = await startTestPostgres();
  const db = await createTestDatabase();
  const ds = await new DataSource(createDataSourceOptions(db.url, 4, [])).initialize();
  try {
    await writerCost(ds);
    const t0 = now();
    // 200 members, 50 repositories, 20 versions each; a third manifests, the rest blobs and
    // downloads; one request in 20 refused.
    await ds.query(
      `INSERT INTO audit_events (id, occurred_at, request_id, member_id, username, action, repository, reference,
         outcome, reason, http_status, bytes, cache)
       SELECT gen_random_uuid(), now() - random() * interval '30 days', md5(i::text),
         md5('member-' || (i % 200))::uuid, 'member-' || (i % 200),
         CASE WHEN i % 3 = 0 THEN 'manifest.get' WHEN i % 11 = 0 THEN 'download' ELSE 'blob.get' END,
         'acme/app-' || (i % 50), 'v1.' || (i % 20) || '.0',
         CASE WHEN i % 20 = 0 THEN 'denied' ELSE 'allowed' END,
         CASE WHEN i % 20 = 0 THEN 'tag_not_entitled' ELSE NULL END,
         CASE WHEN i % 20 = 0 THEN 404 ELSE 200 END,
         (i % 100000) * 1000, CASE WHEN i % 4 = 0 THEN 'miss' ELSE 'hit' END
       FROM generate_series(1, $1::int) AS i`,
      [rows],
    );
    await ds.query('VACUUM ANALYZE audit_events');
    console.log(`${rows.toLocaleString('en')} audit rows inserted in ${((now() - t0) / 1000).toFixed(1)} s`);
    const run: AuditSqlRunner = (sql) => ds.query(sql.text, sql.values);
    const views: Array<[string, Parameters<typeof auditAnalytics>[1]]> = [
      ['all members and repositories, 30 days', { days: 30, now: new Date() }],
      [
        'one repository with version adoption, 30 days',
        { days: 30, repository: 'acme/app-7', now: new Date() },
      ],
      ['one member, 30 days', { days: 30, username: 'member-42', now: new Date() }],
      ['all, 7 days', { days: 7, now: new Date() }],
      ['all, 90 days', { days: 90, now: new Date() }],
    ];
    for (const [label, filters] of views) {
      const times: number[] = [];
      for (let i = 0; i < 7; i++) {
        const t = now();
        await auditAnalytics(run, filters);
        times.push(now() - t);
      }
      console.log(
        `${label}: median ${median(times).toFixed(0)} ms, slowest ${Math.max(...times).toFixed(0)} ms`,
      );
    }
  } finally {
    await ds.destroy();
    await db.drop();
    await pg.stop();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
