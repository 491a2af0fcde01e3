import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { createTestDatabase, TestDatabase } from '@gatehouse/testing';
import { runCli } from '../cli';
import { captureIo } from '../test/capture-io';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** member, key, grant, revoke and entitlements against a real PostgreSQL, in-process. */
describe('gatehouse member / key / grant / revoke / entitlements', () => {
  let db: TestDatabase;
  let dataDir: string;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    db = await createTestDatabase();
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatehouse-cli-members-'));
    env = { DATABASE_URL: db.url, DATA_DIR: dataDir };
    // The access-key secret a deployed gateway already has (creating one is announced on stderr,
    // see support-tools.int-spec.ts).
    fs.writeFileSync(path.join(dataDir, 'access-key-secret'), randomBytes(32).toString('hex') + '\n', {
      mode: 0o600,
    });
  });
  afterAll(async () => {
    await db?.drop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  async function run(...args: string[]) {
    const io = captureIo();
    const code = await runCli(args, io, env);
    return { code, out: io.out(), err: io.err() };
  }

  async function query<T = Record<string, unknown>>(sql: string, params: unknown[] = []): Promise<T[]> {
    const c = new Client({ connectionString: db.url });
    await c.connect();
    try {
      return (await c.query(sql, params)).rows as T[];
    } finally {
      await c.end();
    }
  }

  it('creates, lists, shows, disables and enables members', async () => {
    const created = await run('member', 'create', 'Alice', '--note', 'Acme Corp');
    expect(created).toMatchObject({ code: 0, err: '' });
    expect(created.out).toMatch(/^Created member alice \(/);

    expect(await run('member', 'create', 'alice')).toMatchObject({
      code: 1,
      err: 'error: a member named "alice" already exists\n',
    });
    const bad = await run('member', 'create', 'bad name');
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/not a valid username: use lowercase letters/);

    const list = await run('member', 'list', '--format', 'json');
    expect(JSON.parse(list.out)).toEqual([
      expect.objectContaining({ username: 'alice', status: 'active', note: 'Acme Corp' }),
    ]);
    expect((await run('member', 'list')).out).toContain('alice');

    expect((await run('member', 'disable', 'ALICE')).out).toBe('Member alice is disabled.\n');
    expect(
      (await query(`SELECT status, disabled_at FROM members WHERE username = 'alice'`))[0],
    ).toMatchObject({ status: 'disabled' });
    expect((await run('member', 'enable', 'alice')).out).toBe('Member alice is enabled.\n');
    expect(await run('member', 'show', 'nobody')).toMatchObject({
      code: 1,
      err: expect.stringMatching(/no member named "nobody"/),
    });
  });

  it('creates a key shown once and stored only as a hash; lists and revokes it', async () => {
    await run('member', 'create', 'bob');
    const created = await run('key', 'create', 'bob', '--name', 'ci', '--expires', '30d', '--format', 'json');
    expect(created.code).toBe(0);
    const key = JSON.parse(created.out) as { key: string; id: string; prefix: string; status: string };
    expect(key.key).toMatch(/^ghk_[A-Za-z0-9_-]{43}$/);
    expect(key.prefix).toBe(key.key.slice(0, 12));
    expect(key.status).toBe('active');

    const rows = await query<{ key_hash: string; prefix: string; expires_at: Date }>(
      `SELECT * FROM access_keys WHERE id = $1`,
      [key.id],
    );
    expect(rows[0].key_hash).toMatch(/^[0-9a-f]{64}$/);
    expect(rows[0].key_hash).not.toContain(key.key.slice(4));
    expect(rows[0].expires_at).toBeInstanceOf(Date);
    // The secret appears nowhere in the database.
    const dump = JSON.stringify(await query(`SELECT * FROM access_keys`));
    expect(dump).not.toContain(key.key);
    expect(fs.statSync(path.join(dataDir, 'access-key-secret')).mode & 0o777).toBe(0o600);

    const text = await run('key', 'create', 'bob');
    expect(text.out).toMatch(
      /^Access key for bob \(id [0-9a-f-]{36}\):\n\n {2}ghk_[A-Za-z0-9_-]{43}\n\nCopy it now: it is shown only this once/,
    );

    const listed = await run('key', 'list', '--member', 'bob');
    expect(listed.out).toContain(key.prefix);
    expect(listed.out).not.toContain(key.key);

    expect((await run('key', 'revoke', key.prefix)).out).toMatch(
      new RegExp(`^Revoked key ${key.prefix} \\(${key.id}\\) of bob at `),
    );
    const after = JSON.parse((await run('key', 'list', '--member', 'bob', '--format', 'json')).out) as Array<{
      id: string;
      status: string;
    }>;
    expect(after.find((k) => k.id === key.id)?.status).toBe('revoked');

    expect(await run('key', 'revoke', 'ghk_nothere')).toMatchObject({
      code: 1,
      err: expect.stringMatching(/no access key with id or prefix/),
    });
    expect(await run('key', 'create', 'bob', '--expires', 'yesterday')).toMatchObject({
      code: 2,
      err: expect.stringMatching(/is not an expiry/),
    });
    expect(await run('key', 'create', 'nobody')).toMatchObject({ code: 1 });
  });

  it('grants, lists and revokes entitlements; refuses invalid rules and names', async () => {
    await run('member', 'create', 'carol');
    const granted = await run(
      'grant',
      'carol',
      'acme/app',
      '--tags',
      'v1.2.3,v1.{3,4}.*,semver:>=2.0.0 <3.0.0',
      '--expires',
      '2099-12-31',
      '--note',
      'contract 42',
    );
    expect(granted).toMatchObject({ code: 0, err: '' });
    expect(granted.out).toBe(
      'Granted: carol may pull acme/app tags v1.2.3, v1.{3,4}.*, semver:>=2.0.0 <3.0.0 until 2100-01-01T00:00:00.000Z.\n',
    );
    const again = await run('grant', 'carol', 'acme/app', '--tags', '*');
    expect(again.out).toBe('Updated: carol may pull acme/app tags *.\n');
    await run('grant', 'carol', 'acme/tools/cli', '--tags', 'latest');

    const listed = JSON.parse((await run('entitlements', '--member', 'carol', '--format', 'json')).out);
    expect(listed).toEqual([
      expect.objectContaining({
        member: 'carol',
        repository: 'acme/app',
        tagRules: ['*'],
        live: true,
        expiresAt: null,
      }),
      expect.objectContaining({ member: 'carol', repository: 'acme/tools/cli', tagRules: ['latest'] }),
    ]);
    expect(
      JSON.parse((await run('entitlements', '--repository', 'acme/tools/cli', '--format', 'json')).out),
    ).toHaveLength(1);

    expect(await run('grant', 'carol', 'acme/app', '--tags', 'semver:banana')).toMatchObject({
      code: 2,
      err: expect.stringMatching(/"semver:banana" is not a valid semver range/),
    });
    expect(await run('grant', 'carol', 'Acme/App', '--tags', '*')).toMatchObject({
      code: 2,
      err: expect.stringMatching(/is not a repository name/),
    });
    expect(await run('grant', 'carol', 'acme/app', '--tags', 'v1.[2')).toMatchObject({
      code: 2,
      err: expect.stringMatching(/not a valid glob/),
    });
    expect((await run('grant', 'carol', 'acme/app')).code).toBe(2);
    const upper = await run('grant', 'carol', 'acme/app', '--tags', 'V1.0');
    expect(upper.err).toMatch(/tag rules compare in lower case: V1.0/);
    // The note and the matcher share one canonical form: a semver range is folded too.
    const range = await run('grant', 'carol', 'acme/app', '--tags', 'semver:>=1.0.0-RC.1,v1.0');
    expect(range.err).toMatch(/tag rules compare in lower case: semver:>=1.0.0-RC.1\n/);

    expect((await run('revoke', 'carol', 'acme/tools/cli')).out).toBe(
      'Revoked: carol may no longer pull acme/tools/cli.\n',
    );
    expect(await run('revoke', 'carol', 'acme/tools/cli')).toMatchObject({
      code: 1,
      err: expect.stringMatching(/has no entitlement to "acme\/tools\/cli"/),
    });

    const show = await run('member', 'show', 'carol');
    expect(show.out).toMatch(/member {4}carol/);
    expect(show.out).toContain('acme/app');
  });
});
