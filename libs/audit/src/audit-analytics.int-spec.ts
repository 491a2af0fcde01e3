import { Pool } from 'pg';
import { createTestDatabase, TestDatabase } from '@gatehouse/testing';
import { auditAnalytics, AuditSqlRunner } from './index';

/** Audit rows as the batch writer inserts them: several in one statement. */
async function insert(client: Pool, rows: Array<[string, string, string, string, string | null, number]>) {
  const values: unknown[] = [];
  const tuples = rows.map(([at, username, action, outcome, reason, bytes], i) => {
    values.push(at, username, action, outcome, reason, bytes);
    const p = i * 6;
    return `(gen_random_uuid(), $${p + 1}::timestamptz, $${p + 2}, $${p + 3}, 'acme/app', 'v1.0.0', $${p + 4}, $${p + 5}, $${p + 6}, CASE WHEN $${p + 3} = 'blob.get' THEN 'hit' END)`;
  });
  await client.query(
    `INSERT INTO audit_events (id, occurred_at, username, action, repository, reference, outcome, reason, bytes, cache)
     VALUES ${tuples.join(', ')}`,
    values,
  );
}

describe('analytics from the daily rollups', () => {
  let db: TestDatabase;
  let client: Pool;
  let run: AuditSqlRunner;

  beforeAll(async () => {
    db = await createTestDatabase();
    client = new Pool({ connectionString: db.url, max: 4 });
    run = async (sql) => (await client.query(sql.text, sql.values as unknown[])).rows;
  });
  afterAll(async () => {
    await client?.end();
    await db?.drop();
  });

  it('folds each inserted batch into the rollups, so analytics count every row once', async () => {
    await insert(client, [
      ['2026-03-30T10:00:00Z', 'alice', 'manifest.get', 'allowed', null, 0],
      ['2026-03-30T10:00:01Z', 'alice', 'blob.get', 'allowed', null, 1000],
      ['2026-03-30T11:00:00Z', 'bob', 'manifest.get', 'denied', 'tag_not_entitled', 0],
    ]);
    await insert(client, [
      ['2026-03-31T09:00:00Z', 'alice', 'manifest.get', 'allowed', null, 0],
      ['2026-03-31T09:30:00Z', 'carol', 'manifest.get', 'allowed', null, 0],
      ['2026-03-31T09:30:01Z', 'carol', 'blob.get', 'allowed', null, 500],
      ['2026-03-31T09:40:00Z', 'bob', 'manifest.get', 'denied', 'tag_not_entitled', 0],
    ]);
    const a = await auditAnalytics(run, {
      days: 7,
      repository: 'acme/app',
      now: new Date('2026-03-31T12:00:00Z'),
    });
    expect(a.daily).toEqual([
      { day: '2026-03-30', pulls: 1, downloads: 0, bytes: 1000, cacheHits: 1, cacheLookups: 1 },
      { day: '2026-03-31', pulls: 2, downloads: 0, bytes: 500, cacheHits: 1, cacheLookups: 1 },
    ]);
    expect(a.byMember).toEqual([
      { key: 'alice', count: 2 },
      { key: 'carol', count: 1 },
    ]);
    expect(a.refusals).toEqual([{ key: 'tag_not_entitled', count: 2 }]);
    expect(a.adoption).toMatchObject({ distinctVersions: 1, shareOnNewestThree: 1 });
    const oneDay = await auditAnalytics(run, { days: 1, now: new Date('2026-03-31T12:00:00Z') });
    expect(oneDay.daily.map((d) => d.day)).toEqual(['2026-03-31']);
  });
});
