import { parse } from 'csv-parse/sync';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Client } from 'pg';
import { createTestDatabase, TestDatabase } from '@gatehouse/testing';
import { BuiltGateway, startBuiltGateway } from '@gatehouse/testing/gateway';
import { getFreePort } from '@gatehouse/testing/upstream';

const root = path.resolve(__dirname, '../../../..');
const bin = path.join(root, 'bin/gatehouse.js');

interface Run {
  code: number | null;
  out: string;
  err: string;
}

/** The built CLI as an operator runs it: a process in `cwd` with only PATH, HOME and `env`. */
function cli(args: string[], env: Record<string, string>, cwd: string): Promise<Run> {
  if (!fs.existsSync(path.join(root, 'dist/apps/cli/src/main.js')))
    throw new Error('dist/apps/cli/src/main.js is missing: run npm run build first (scripts/test.sh does)');
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], {
      cwd,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += String(d)));
    child.stderr.on('data', (d) => (err += String(d)));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, out, err }));
  });
}

const emptyDir = (label: string) => fs.mkdtempSync(path.join(os.tmpdir(), `gatehouse-${label}-`));
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});
function tempDir(label: string): string {
  const d = emptyDir(label);
  // The embedded PostgreSQL runs as the postgres user under root: it must reach the directory.
  fs.chmodSync(d, 0o755);
  dirs.push(d);
  return d;
}

const READ_ONLY: string[][] = [
  ['audit'],
  ['audit', '--member', 'demo'],
  ['explain', 'demo', 'acme/app:v1.0.0'],
  ['entitlements'],
  ['member', 'list'],
  ['key', 'list'],
];

describe('the built CLI on state it did not create', () => {
  it('refuses read-only commands in an empty directory, in one line naming DATA_DIR, DATABASE_URL and where it looked', async () => {
    const cwd = tempDir('cli-empty');
    for (const args of READ_ONLY) {
      const r = await cli(args, {}, cwd);
      expect({ args, code: r.code, out: r.out }).toEqual({ args, code: 2, out: '' });
      const lines = r.err.trimEnd().split('\n');
      expect({ args, lines: lines.length }).toEqual({ args, lines: 1 });
      expect(lines[0]).toMatch(/DATABASE_URL is not set and DATA_DIR .* holds no embedded PostgreSQL/);
      expect(lines[0]).toContain(`(looked for ${path.join(fs.realpathSync(cwd), 'data', 'postgres')})`);
    }
    // Nothing was created: no data directory, no cluster, no secret.
    expect(fs.readdirSync(cwd)).toEqual([]);
  });

  it('says on stderr where a write command creates state the first time, and reads it afterwards', async () => {
    const cwd = tempDir('cli-first');
    const dataDir = path.join(fs.realpathSync(cwd), 'data');
    const first = await cli(['member', 'create', 'first'], {}, cwd);
    expect(first.code).toBe(0);
    expect(first.out).toMatch(/Created member first/);
    expect(first.err.trimEnd().split('\n')).toEqual([
      expect.stringContaining(
        `Creating a new embedded PostgreSQL in ${dataDir}/postgres: DATABASE_URL is unset, DATA_DIR (unset, so ${dataDir}).`,
      ),
      expect.stringContaining(`Creating a new access-key secret at ${dataDir}/access-key-secret`),
    ]);

    const second = await cli(['member', 'create', 'second'], {}, cwd);
    expect(second).toMatchObject({ code: 0, err: '' });
    const list = await cli(['member', 'list', '--format', 'json'], {}, cwd);
    expect(list).toMatchObject({ code: 0, err: '' });
    expect((JSON.parse(list.out) as Array<{ username: string }>).map((m) => m.username).sort()).toEqual([
      'first',
      'second',
    ]);
  });

  it('runs as a plain `gatehouse` command with bin/ on PATH (as in the image), no npx', async () => {
    const cwd = tempDir('cli-path');
    const r = await new Promise<Run>((done, fail) => {
      const child = spawn('gatehouse', ['--help'], {
        cwd,
        env: { PATH: `${path.join(root, 'bin')}:${process.env.PATH ?? ''}`, HOME: process.env.HOME ?? '' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      let err = '';
      child.stdout.on('data', (d) => (out += String(d)));
      child.stderr.on('data', (d) => (err += String(d)));
      child.once('error', fail);
      child.once('close', (code) => done({ code, out, err }));
    });
    expect(r).toMatchObject({ code: 0, err: '' });
    expect(r.out).toMatch(/^Usage: gatehouse /);
    expect(r.out).toMatch(/--wide/);
    expect(fs.readdirSync(cwd)).toEqual([]);
  });

  it('reads an external database without creating an access-key secret under DATA_DIR', async () => {
    const db = await createTestDatabase();
    try {
      const cwd = tempDir('cli-external');
      const env = { DATABASE_URL: db.url, DATA_DIR: path.join(cwd, 'data') };
      for (const args of READ_ONLY) {
        const r = await cli(args, env, cwd);
        // explain of an unknown member exits 1 (not allowed); the others answer "nothing".
        expect({ args, code: r.code }).toEqual({ args, code: args[0] === 'explain' ? 1 : 0 });
      }
      expect(fs.existsSync(path.join(cwd, 'data', 'access-key-secret'))).toBe(false);
    } finally {
      await db.drop();
    }
  });
});

/**
 * Names and agents an attacker picks so that support's tools run them (OWASP "CSV injection",
 * terminal escapes). Attempted usernames are stored trimmed and lowercased.
 */
const HOSTILE_USERNAMES = [
  "=cmd|' /c calc'!a0",
  '@sum(1+1)',
  '+1',
  '-2+3',
  'esc\u001b[31mred\u001b[0m',
  'osc\u001b]0;owned\u0007title',
  'line\nbreak\r\nfake row',
];
const HOSTILE_AGENT = '=HYPERLINK("http://evil.example","click")\'';
const FORMULA_START = /^[=+\-@\t\r]/;
// Anything but a newline: a terminal acts on these.
// eslint-disable-next-line no-control-regex
const RAW_CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/;

describe('support tools against the built gateway', () => {
  let db: TestDatabase;
  let gw: BuiltGateway;
  let base: string;
  let host: string;
  let env: Record<string, string>;
  let cwd: string;
  let key: string;
  /** The error a customer pastes: the refusal of an unentitled tag. */
  let refusal: {
    requestId: string;
    body: { errors: Array<{ code: string; detail: { requestId: string } }> };
  };

  const ok = async (...args: string[]) => {
    const r = await cli(args, env, cwd);
    expect({ args, code: r.code, err: r.err }).toEqual({ args, code: 0, err: '' });
    return r.out;
  };
  const token = async (auth: string, scope?: string, userAgent = 'docker/27.0') => {
    const q = new URLSearchParams({ service: host });
    if (scope) q.set('scope', scope);
    return fetch(`${base}/auth/token?${q}`, { headers: { authorization: auth, 'user-agent': userAgent } });
  };
  const basic = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;

  beforeAll(async () => {
    db = await createTestDatabase();
    cwd = tempDir('cli-support');
    const port = await getFreePort();
    // Upstream is a closed port: refusals are decided before upstream is asked.
    const deadUpstream = await getFreePort();
    host = `127.0.0.1:${port}`;
    base = `http://${host}`;
    env = { DATABASE_URL: db.url, DATA_DIR: path.join(cwd, 'data') };
    const created = await cli(['member', 'create', 'alice'], env, cwd);
    expect(created.err).toMatch(/^Creating a new access-key secret at .*access-key-secret/);
    key = (JSON.parse(await ok('key', 'create', 'alice', '--format', 'json')) as { key: string }).key;
    await ok('grant', 'alice', 'acme/app', '--tags', 'v1.0.0');
    gw = startBuiltGateway({
      ...env,
      PORT: String(port),
      HOST: '127.0.0.1',
      OCI_REGISTRY_SERVICE: host,
      OCI_REGISTRY_REALM: `${base}/auth/token`,
      FORGEJO_BASE_URL: `http://127.0.0.1:${deadUpstream}`,
      FORGEJO_API_TOKEN: 'not-used',
      AUTH_FAILED_LOGINS_PER_IP: '100000',
      AUTH_FAILED_LOGINS_PER_USERNAME: '100000',
    });
    await gw.waitUntilHealthy(base);

    for (const name of HOSTILE_USERNAMES) {
      const res = await token(basic(name, `ghk_${'A'.repeat(43)}`), undefined, HOSTILE_AGENT);
      expect(res.status).toBe(401);
    }
    const granted = await token(basic('alice', key), 'repository:acme/app:pull');
    const { token: bearer } = (await granted.json()) as { token: string };
    const res = await fetch(`${base}/v2/acme/app/manifests/v9.9.9`, {
      headers: { authorization: `Bearer ${bearer}` },
    });
    expect(res.status).toBe(404);
    refusal = {
      requestId: res.headers.get('x-request-id')!,
      body: (await res.json()) as typeof refusal.body,
    };
    // Allowed rows newer than the refusal, as a pull's blob downloads leave them.
    const c = new Client({ connectionString: db.url });
    await c.connect();
    try {
      for (let i = 0; i < 6; i++)
        await c.query(
          `INSERT INTO audit_events (id, occurred_at, request_id, member_id, username, action, repository, digest, outcome, http_status)
           SELECT gen_random_uuid(), now() + interval '1 minute', $1, id, username, 'blob.get', 'acme/app', $2, 'allowed', 200
             FROM members WHERE username = 'alice'`,
          [`blob-${i}`, `sha256:${String(i).repeat(64)}`],
        );
    } finally {
      await c.end();
    }
    // Audit rows are written off the request path: wait until the refusal is stored.
    const until = Date.now() + 15_000;
    for (;;) {
      const rows = JSON.parse(
        await ok('audit', '--request-id', refusal.requestId, '--format', 'json'),
      ) as unknown[];
      if (rows.length > 0) break;
      if (Date.now() > until) throw new Error(`the refusal ${refusal.requestId} was not audited within 15 s`);
      await new Promise((r) => setTimeout(r, 200));
    }
  });
  afterAll(async () => {
    if (gw) {
      gw.child.kill('SIGTERM');
      await gw.exited;
    }
    await db?.drop();
  });

  it("puts the request id and the vendor's look-up in the refusal a customer pastes", () => {
    const [error] = refusal.body.errors;
    expect(error.code).toBe('MANIFEST_UNKNOWN');
    expect(error.detail).toEqual({
      requestId: refusal.requestId,
      help: `quote this request id to your registry provider; they can look it up with: gatehouse audit --request-id ${refusal.requestId}`,
    });
  });

  it('finds that row by the short request id the table shows, and by the whole id', async () => {
    const short = `${refusal.requestId.slice(0, 8)}…`;
    for (const id of [short, refusal.requestId.slice(0, 8), refusal.requestId]) {
      const rows = JSON.parse(await ok('audit', '--request-id', id, '--format', 'json')) as Array<
        Record<string, unknown>
      >;
      expect(rows).toHaveLength(1);
      expect(rows[0]).toMatchObject({
        requestId: refusal.requestId,
        username: 'alice',
        action: 'manifest.get',
        reference: 'v9.9.9',
        outcome: 'denied',
        reason: 'tag_not_entitled',
        httpStatus: 404,
      });
    }
    const table = await ok('audit', '--member', 'alice');
    expect(table).toContain(short);
    const tooShort = await cli(['audit', '--request-id', 'ab'], env, cwd);
    expect(tooShort.code).toBe(2);
  });

  it('explains with the refusals first, reason codes included', async () => {
    const r = await cli(['explain', 'alice', 'acme/app:v9.9.9', '--format', 'json'], env, cwd);
    expect(r.code).toBe(1);
    const body = JSON.parse(r.out) as { recentAudit: Array<Record<string, unknown>> };
    expect(body.recentAudit[0]).toMatchObject({
      requestId: refusal.requestId,
      outcome: 'denied',
      reason: 'tag_not_entitled',
    });
    // The allowed rows are newer, yet come after the refusals, and not all of them.
    const outcomes = body.recentAudit.map((e) => e.outcome);
    expect(outcomes.indexOf('allowed')).toBeGreaterThan(outcomes.lastIndexOf('denied'));
    expect(outcomes.filter((o) => o === 'allowed')).toHaveLength(3);

    const text = await cli(['explain', 'alice', 'acme/app:v9.9.9'], env, cwd);
    const events = text.out.slice(text.out.indexOf('Latest audit events'));
    expect(events).toMatch(/refusals first/);
    expect(
      events.indexOf(`manifest.get  v9.9.9  denied (tag_not_entitled) 404  ${refusal.requestId}`),
    ).toBeGreaterThan(0);
    expect(events.indexOf('denied')).toBeLessThan(events.indexOf('allowed'));
  });

  it('prints no spreadsheet formula in the CSV, parsed back with a CSV parser', async () => {
    const csv = await ok('audit', '--format', 'csv', '--limit', '1000');
    const records = parse(csv, { columns: true }) as Array<Record<string, string>>;
    const refused = records.filter((r) => r.action === 'token.refuse');
    expect(refused).toHaveLength(HOSTILE_USERNAMES.length);
    for (const record of records)
      for (const [field, value] of Object.entries(record))
        expect({ field, value, formula: FORMULA_START.test(value) }).toMatchObject({ formula: false });
    // Neutralised the OWASP way: a leading quote, the rest kept.
    const names = refused.map((r) => r.username);
    for (const name of HOSTILE_USERNAMES)
      expect(names).toContain(FORMULA_START.test(name) ? `'${name}` : name);
    expect(refused.every((r) => r.userAgent === `'${HOSTILE_AGENT}`)).toBe(true);
    // Every cell is quoted, so a spreadsheet takes none of them for a number or a formula.
    expect(csv.split('\n')[1].startsWith('"')).toBe(true);
  });

  it('shows control characters escaped in the table and keeps JSON exact', async () => {
    const table = await cli(['audit', '--action', 'token.refuse'], { ...env, COLUMNS: '120' }, cwd);
    expect(table).toMatchObject({ code: 0, err: '' });
    expect(RAW_CONTROL.test(table.out)).toBe(false);
    expect(table.out).toContain('\\x1b');
    expect(table.out).toContain('\\x07');
    expect(table.out).toContain('\\n');
    const wide = await cli(['audit', '--action', 'token.refuse', '--wide'], env, cwd);
    expect(RAW_CONTROL.test(wide.out)).toBe(false);
    expect(wide.out).toContain(HOSTILE_AGENT);

    const json = JSON.parse(await ok('audit', '--action', 'token.refuse', '--format', 'json')) as Array<{
      username: string;
      userAgent: string;
    }>;
    expect(json.map((e) => e.username).sort()).toEqual([...HOSTILE_USERNAMES].sort());
    expect(json.every((e) => e.userAgent === HOSTILE_AGENT)).toBe(true);

    const explained = await cli(['explain', 'esc\u001b[31mred\u001b[0m', 'acme/app:v1.0.0'], env, cwd);
    expect(explained.code).toBe(1);
    expect(RAW_CONTROL.test(explained.out + explained.err)).toBe(false);
    expect(explained.out).toContain('esc\\x1b[31mred\\x1b[0m');
  });

  it('fits the audit and verify-oci tables in COLUMNS=120, and shows everything with --wide', async () => {
    const longest = (text: string) => Math.max(...text.split('\n').map((l) => l.length));
    const table = await cli(['audit'], { ...env, COLUMNS: '120' }, cwd);
    expect(table).toMatchObject({ code: 0, err: '' });
    expect(longest(table.out)).toBeLessThanOrEqual(120);
    // Not a tty and no COLUMNS: 100.
    expect(longest((await cli(['audit'], env, cwd)).out)).toBeLessThanOrEqual(100);
    const wide = await cli(['audit', '--wide'], { ...env, COLUMNS: '120' }, cwd);
    expect(longest(wide.out)).toBeGreaterThan(120);
    expect(wide.out).toContain(refusal.requestId);
    expect(wide.out).toMatch(/user agent/);

    const verify = await cli(
      [
        'verify-oci',
        '--url',
        base,
        '--username',
        'alice',
        '--password',
        key,
        '--image',
        'acme/app:v1.0.0',
        '--unentitled-tag',
        'v9.9.9',
        '--no-client',
        '--timeout',
        '5',
      ],
      { COLUMNS: '120' },
      cwd,
    );
    // The upstream is down, so the pull rows fail; the table is what is checked here.
    expect(verify.out).toMatch(/checks: /);
    expect(verify.out).toMatch(/│ realm /);
    expect(longest(verify.out)).toBeLessThanOrEqual(120);
  });
});
