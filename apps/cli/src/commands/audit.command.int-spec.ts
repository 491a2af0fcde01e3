import { parse } from 'csv-parse/sync';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { Client } from 'pg';
import { createTestDatabase, TestDatabase } from '@gatehouse/testing';
import { runCli } from '../cli';
import { cell } from '../output';
import { csvSafe } from '../terminal-text';
import { captureIo } from '../test/capture-io';
import { AUDIT_FIELDS } from './audit.command';

const root = path.resolve(__dirname, '../../../..');
const HOUR = 3_600_000;

/** `gatehouse audit` and `gatehouse audit prune` against a real PostgreSQL, in-process and built. */
describe('gatehouse audit', () => {
  let db: TestDatabase;
  let dataDir: string;
  let env: NodeJS.ProcessEnv;
  const now = Date.now();

  async function run(...args: string[]) {
    const io = captureIo();
    const code = await runCli(args, io, env);
    return { code, out: io.out(), err: io.err() };
  }

  async function insert(rows: Array<Record<string, unknown>>): Promise<void> {
    const c = new Client({ connectionString: db.url });
    await c.connect();
    try {
      for (const r of rows) {
        await c.query(
          `INSERT INTO audit_events (id, occurred_at, request_id, member_id, username, client_ip, user_agent, action,
             repository, reference, digest, outcome, reason, http_status, bytes, cache, duration_ms, details,
             client_member_tag, client_request_id)
           VALUES (gen_random_uuid(), $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18,
             $19)`,
          [
            r.at,
            r.requestId ?? null,
            r.memberId ?? null,
            r.username ?? null,
            r.ip ?? null,
            r.userAgent ?? null,
            r.action,
            r.repository ?? null,
            r.reference ?? null,
            r.digest ?? null,
            r.outcome,
            r.reason ?? null,
            r.status ?? null,
            r.bytes ?? null,
            r.cache ?? null,
            r.durationMs ?? null,
            r.details === undefined ? null : JSON.stringify(r.details),
            r.memberTag ?? null,
            r.clientRequestId ?? null,
          ],
        );
      }
    } finally {
      await c.end();
    }
  }

  beforeAll(async () => {
    db = await createTestDatabase();
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatehouse-cli-audit-'));
    // Tables fit COLUMNS (100 without it, stdout not being a terminal).
    env = { DATABASE_URL: db.url, DATA_DIR: dataDir, COLUMNS: '120' };
    const memberId = '11111111-2222-4333-8444-555555555555';
    await insert([
      {
        at: new Date(now - 2 * HOUR),
        requestId: 'req-1',
        memberId,
        username: 'carol',
        ip: '203.0.113.7',
        userAgent: 'docker/27.0 go/1.22, "quoted"',
        action: 'manifest.get',
        repository: 'acme/app',
        reference: 'v2.0.0',
        outcome: 'denied',
        reason: 'tag_not_entitled',
        status: 404,
        durationMs: 3,
        details: { note: 'a, b; "c"\nnext line' },
      },
      {
        at: new Date(now - 1 * HOUR),
        requestId: 'req-2',
        memberId,
        username: 'carol',
        ip: '203.0.113.7',
        action: 'blob.get',
        repository: 'acme/app',
        digest: 'sha256:' + 'b'.repeat(64),
        outcome: 'allowed',
        status: 200,
        bytes: 2 ** 40,
        cache: 'hit',
      },
      {
        at: new Date(now - 3 * 24 * HOUR),
        requestId: 'req-3',
        memberId,
        username: 'carol',
        ip: '198.51.100.2',
        action: 'token.issue',
        outcome: 'allowed',
        status: 200,
        memberTag: 'm1-0123456789abcdef0123456789abcdef',
        clientRequestId: 'b-req-77',
      },
      {
        at: new Date(now - 30 * 60_000),
        requestId: 'req-4',
        username: 'mallory',
        ip: '198.51.100.66',
        action: 'token.refuse',
        outcome: 'denied',
        reason: 'bad_credentials',
        status: 401,
      },
      {
        at: new Date(now - 40 * 24 * HOUR),
        requestId: 'req-old',
        username: 'carol',
        action: 'tags.list',
        repository: 'acme/app',
        outcome: 'allowed',
      },
    ]);
  });
  afterAll(async () => {
    await db?.drop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  const requestIds = (out: string) =>
    (JSON.parse(out) as Array<{ requestId: string }>).map((e) => e.requestId);

  it('prints the same events as a table, JSON and CSV', async () => {
    const args = ['audit', '--member', 'Carol', '--since', '7d'];
    const json = await run(...args, '--format', 'json');
    const csv = await run(...args, '--format', 'csv');
    const table = await run(...args);
    const wideTable = await run(...args, '--wide');
    for (const r of [json, csv, table, wideTable]) expect(r).toMatchObject({ code: 0, err: '' });

    const events = JSON.parse(json.out) as Array<Record<string, unknown>>;
    expect(events.map((e) => e.requestId)).toEqual(['req-2', 'req-1', 'req-3']);
    expect(Object.keys(events[0])).toEqual([...AUDIT_FIELDS]);
    expect(events[0]).toMatchObject({ bytes: 2 ** 40, cache: 'hit', digest: 'sha256:' + 'b'.repeat(64) });
    expect(events[1]).toMatchObject({
      userAgent: 'docker/27.0 go/1.22, "quoted"',
      details: { note: 'a, b; "c"\nnext line' },
      reason: 'tag_not_entitled',
      httpStatus: 404,
    });

    const records = parse(csv.out, { columns: true }) as Array<Record<string, string>>;
    expect(csv.out.startsWith('"id","occurredAt",')).toBe(true);
    expect(Object.keys(records[0])).toEqual([...AUDIT_FIELDS]);
    // Every CSV field is the JSON value as text: nothing lost to commas, quotes or newlines.
    expect(records).toEqual(
      events.map((e) => Object.fromEntries(AUDIT_FIELDS.map((f) => [f, csvSafe(cell(e[f]))]))),
    );
    expect(JSON.parse(records[1].details)).toEqual({ note: 'a, b; "c"\nnext line' });

    // The table: one row per event in the same order, with the fields support reads first.
    const rows = table.out.split('\n').filter((l) => /req-\d/.test(l));
    expect(rows.map((l) => /req-\d/.exec(l)![0])).toEqual(['req-2', 'req-1', 'req-3']);
    for (const [i, e] of events.entries()) {
      // The table's times are UTC to the second.
      expect(rows[i]).toContain((e.occurredAt as string).slice(0, 19).replace('T', ' '));
      expect(rows[i]).toContain(e.outcome as string);
    }
    expect(rows[1]).toMatch(/│ acme\/app:v2\.0\.0\s*│\s*denied 404\s*│\s*tag_not_entitled\s*│\s*req-1/);
    expect(rows[0]).toMatch(/│ acme\/app@sha256:bbbbbbbbbbbb…?\s*│ allowed 200 /);
    // --wide: every field support may need, unwrapped, with the full times and digests.
    const wideRows = wideTable.out.split('\n').filter((l) => /req-\d/.test(l));
    for (const [i, e] of events.entries()) {
      expect(wideRows[i]).toContain(e.occurredAt as string);
      expect(wideRows[i]).toContain(e.action as string);
    }
    expect(wideRows[0]).toContain('sha256:' + 'b'.repeat(64));
    expect(wideRows[1]).toMatch(/acme\/app\s*│\s*v2\.0\.0\s*│\s*denied\s*│\s*tag_not_entitled\s*│\s*404/);
    expect(wideRows[1]).toContain('docker/27.0 go/1.22, "quoted"');
  });

  it('narrows by every filter', async () => {
    const ids = async (...filters: string[]) => {
      const r = await run('audit', ...filters, '--format', 'json');
      expect(r).toMatchObject({ code: 0, err: '' });
      return requestIds(r.out);
    };
    expect(await ids('--member', 'carol', '--since', '90m')).toEqual(['req-2']);
    expect(await ids('--member', '11111111-2222-4333-8444-555555555555')).toEqual([
      'req-2',
      'req-1',
      'req-3',
    ]);
    expect(await ids('--repository', 'acme/app')).toEqual(['req-2', 'req-1', 'req-old']);
    expect(await ids('--action', 'token.refuse')).toEqual(['req-4']);
    expect(await ids('--outcome', 'denied')).toEqual(['req-4', 'req-1']);
    expect(await ids('--reason', 'tag_not_entitled')).toEqual(['req-1']);
    expect(await ids('--ip', '198.51.100.2')).toEqual(['req-3']);
    expect(await ids('--request-id', 'req-4')).toEqual(['req-4']);
    expect(await ids('--member-tag', 'm1-0123456789abcdef0123456789abcdef')).toEqual(['req-3']);
    expect(await ids('--member-tag', 'm1-0123')).toEqual([]);
    expect(await ids('--client-request-id', 'b-req-77')).toEqual(['req-3']);
    expect(await ids('--client-request-id', 'b-req')).toEqual([]);
    expect(await ids('--request-id', 'b-req-77')).toEqual([]);
    expect(await ids('--since', '1d', '--until', '90m')).toEqual(['req-1']);
    const day = new Date(now - 40 * 24 * HOUR).toISOString().slice(0, 10);
    expect(await ids('--until', day)).toEqual([]);
    expect(await ids('--since', day, '--until', new Date(now - 10 * 24 * HOUR).toISOString())).toEqual([
      'req-old',
    ]);
    expect(await ids('--limit', '2')).toEqual(['req-4', 'req-2']);
  });

  it('narrows by the kind of target: images, releases or packages', async () => {
    await insert([
      {
        at: new Date(now - 5 * 60_000),
        requestId: 'req-rel',
        action: 'download',
        repository: 'releases:acme/tool',
        outcome: 'allowed',
      },
      {
        at: new Date(now - 6 * 60_000),
        requestId: 'req-pkg',
        action: 'download',
        repository: 'packages:acme/cli',
        outcome: 'allowed',
      },
    ]);
    try {
      const ids = async (kind: string) =>
        requestIds((await run('audit', '--kind', kind, '--format', 'json')).out);
      await expect(ids('releases')).resolves.toEqual(['req-rel']);
      await expect(ids('packages')).resolves.toEqual(['req-pkg']);
      await expect(ids('image')).resolves.toEqual(['req-2', 'req-1', 'req-old']);
      expect((await run('audit', '--kind', 'helm')).code).toBe(2);
    } finally {
      const c = new Client({ connectionString: db.url });
      await c.connect();
      await c.query(`DELETE FROM audit_events WHERE request_id IN ('req-rel', 'req-pkg')`);
      await c.end();
    }
  });

  it('says when nothing matches, and exits 2 on a bad filter value', async () => {
    expect(await run('audit', '--member', 'nobody')).toEqual({
      code: 0,
      out: 'No audit events match.\n',
      err: '',
    });
    expect(await run('audit', '--format', 'json', '--member', 'nobody')).toMatchObject({ out: '[]\n' });
    expect(await run('audit', '--format', 'csv', '--member', 'nobody')).toMatchObject({
      out: AUDIT_FIELDS.map((f) => `"${f}"`).join(',') + '\n',
    });
    const bad = await run('audit', '--since', 'yesterday');
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/--since: "yesterday" is not a time: use a duration back from now/);
    const huge = await run('audit', '--since', '99999999999999d');
    expect(huge.code).toBe(2);
    expect(huge.err).toMatch(
      /--since: "99999999999999d" is out of range: times must fall between 0001-01-01/,
    );
    expect((await run('audit', '--limit', '0')).code).toBe(2);
    expect((await run('audit', '--member-tag', 'a b')).code).toBe(2);
    expect((await run('audit', '--outcome', 'maybe')).code).toBe(2);
    expect((await run('audit', '--since', '1h', '--until', '2h')).code).toBe(2);
  });

  it('runs as the built CLI with the same CSV', async () => {
    const main = path.join(root, 'dist/apps/cli/src/commands/audit.command.js');
    if (!fs.existsSync(main))
      throw new Error(`${main} is missing: run npm run build first (scripts/test.sh does)`);
    const args = ['audit', '--member', 'carol', '--since', '7d', '--format', 'csv'];
    const child = await promisify(execFile)(
      process.execPath,
      [path.join(root, 'bin/gatehouse.js'), ...args],
      {
        env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
      },
    );
    expect(child.stderr).toBe('');
    expect(child.stdout).toBe((await run(...args)).out);
    expect(parse(child.stdout, { columns: true })).toHaveLength(3);
  });

  it('prunes events older than the cut-off in batches, with a dry run first', async () => {
    const dry = await run('audit', 'prune', '--older-than', '30d', '--dry-run');
    expect(dry).toMatchObject({ code: 0, err: '' });
    expect(dry.out).toMatch(/^1 audit events are older than .* \(dry run: nothing deleted\)\.\n$/);
    expect(await run('audit', '--request-id', 'req-old', '--format', 'json')).toMatchObject({
      out: expect.stringContaining('req-old'),
    });

    const pruned = await run('audit', 'prune', '--older-than', '2d', '--batch-size', '1', '--format', 'json');
    expect(pruned.code).toBe(0);
    expect(JSON.parse(pruned.out)).toMatchObject({ deleted: 2, batches: 3, dryRun: false });
    expect(requestIds((await run('audit', '--format', 'json')).out)).toEqual(['req-4', 'req-2', 'req-1']);

    // The default cut-off is AUDIT_RETENTION_DAYS; 0 keeps forever and then asks for one.
    const kept = captureIo();
    expect(await runCli(['audit', 'prune'], kept, { ...env, AUDIT_RETENTION_DAYS: '0' })).toBe(2);
    expect(kept.err()).toMatch(/AUDIT_RETENTION_DAYS is 0 .* Pass --older-than/);
    await insert([
      { at: new Date(now - 5 * 24 * HOUR), requestId: 'req-5d', action: 'catalog.list', outcome: 'allowed' },
    ]);
    const byRetention = captureIo();
    expect(
      await runCli(['audit', 'prune', '--format', 'json'], byRetention, {
        ...env,
        AUDIT_RETENTION_DAYS: '1',
      }),
    ).toBe(0);
    expect(JSON.parse(byRetention.out())).toMatchObject({ deleted: 1 });
    expect(requestIds((await run('audit', '--format', 'json')).out)).toEqual(['req-4', 'req-2', 'req-1']);
  });
});
