import { join } from 'node:path';
import { Client } from 'pg';
import { median, now, percentile } from './measure';
import { BenchGateway, BUILD_SNAPSHOT, cli } from './stack';
import { Row } from './table';

const fmt = (n: number, digits = 0): string => n.toFixed(digits);

/**
 * Figure 7: `auditRows` audit rows inserted in one statement, then the search `gatehouse audit
 * --member X --since 1d` runs, in process through the built library and as a whole CLI process.
 */
export async function auditFigure(
  databaseUrl: string,
  gateway: BenchGateway,
  rows: Row[],
  raw: Record<string, unknown>,
  auditRows: number,
  log: (s: string) => void,
): Promise<void> {
  const client = new Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const { rows: members } = await client.query<{ id: string }>(
      `SELECT id FROM members WHERE username = 'bench'`,
    );
    const t0 = now();
    // One member in 200 is the bench member; times spread over 30 days; a mix of actions,
    // repositories, outcomes and reasons like a busy registry's.
    await client.query(
      `INSERT INTO audit_events (id, occurred_at, request_id, member_id, username, client_ip, user_agent, action,
         repository, reference, digest, outcome, reason, http_status, bytes, cache, duration_ms, upstream_status, details)
       SELECT gen_random_uuid(), now() - random() * interval '30 days', md5(i::text),
         CASE WHEN i % 200 = 0 THEN $1::uuid ELSE md5('member-' || (i % 200))::uuid END,
         CASE WHEN i % 200 = 0 THEN 'bench' ELSE 'member-' || (i % 200) END,
         '10.0.' || (i % 250) || '.' || (i % 199), 'containerd/1.7.13',
         CASE WHEN i % 3 = 0 THEN 'manifest.get' ELSE 'blob.get' END,
         'acme/app-' || (i % 50), 'v1.' || (i % 20) || '.0', 'sha256:' || md5(i::text) || md5((i + 1)::text),
         CASE WHEN i % 20 = 0 THEN 'denied' ELSE 'allowed' END,
         CASE WHEN i % 20 = 0 THEN 'tag_not_entitled' ELSE NULL END,
         CASE WHEN i % 20 = 0 THEN 404 ELSE 200 END,
         (i % 100000) * 1000, 'hit', i % 500, NULL, '{"viaTag": "v1.0.0"}'::jsonb
       FROM generate_series(1, $2::int) AS i`,
      [members[0].id, auditRows],
    );
    await client.query('ANALYZE audit_events');
    const { rows: count } = await client.query<{ n: string }>('SELECT count(*) AS n FROM audit_events');
    log(`  ${Number(count[0].n).toLocaleString('en')} rows (inserted in ${fmt((now() - t0) / 1000, 1)} s)`);
  } finally {
    await client.end();
  }

  // The query the command runs, in process: AuditQueryService.find from the built libs.
  /* eslint-disable @typescript-eslint/no-require-imports */
  const { AuditEvent, AuditQueryService } = require(join(BUILD_SNAPSHOT, 'libs/audit/src/index.js'));
  const { createDataSourceOptions } = require(join(BUILD_SNAPSHOT, 'libs/database/src/index.js'));
  const { DataSource } = require('typeorm');
  /* eslint-enable @typescript-eslint/no-require-imports */
  const ds = await new DataSource(createDataSourceOptions(databaseUrl, 2, [AuditEvent])).initialize();
  const queryMs: number[] = [];
  let found = 0;
  try {
    const service = new AuditQueryService(ds);
    for (let i = 0; i < 50; i++) {
      const t = now();
      const events = await service.find({ username: 'bench', since: new Date(Date.now() - 86_400_000) });
      queryMs.push(now() - t);
      found = events.length;
    }
  } finally {
    await ds.destroy();
  }
  const q50 = median(queryMs.slice(5));
  log(
    `  AuditQueryService.find(username, since 1d): p50 ${fmt(q50, 2)} ms, p99 ${fmt(percentile(queryMs.slice(5), 99), 2)} ms, ${found} rows`,
  );

  const help = await cli(gateway.env, ['--help']);
  const hasAudit = /^\s+audit\b/m.test(help);
  const cliMs: number[] = [];
  if (hasAudit) {
    for (let i = 0; i < 11; i++) {
      const t = now();
      await cli(gateway.env, ['audit', '--member', 'bench', '--since', '1d']);
      cliMs.push(now() - t);
    }
    log(`  gatehouse audit --member bench --since 1d (whole process): p50 ${fmt(median(cliMs))} ms`);
  } else {
    log('  this build has no `gatehouse audit` command: the query alone is timed');
  }
  raw.audit = { rows: auditRows, queryMs, cliMs, found, hasAudit };
  if (hasAudit) {
    const c50 = median(cliMs);
    rows.push({
      figure: '7',
      measure: '`gatehouse audit --member X --since 1d`, 1 M rows: p50 (whole CLI process)',
      gatehouse: `${fmt(c50)} ms`,
      reference: '—',
      ratio: '—',
      target: '< 200 ms',
      met: c50 < 200,
    });
  }
  rows.push({
    figure: '7',
    measure: 'the same search, AuditQueryService.find in process, 1 M rows: p50',
    gatehouse: `${fmt(q50, 2)} ms (${found} rows returned)`,
    reference: '—',
    ratio: '—',
    target: '< 200 ms',
    met: q50 < 200,
  });
}
