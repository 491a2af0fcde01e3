import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Client } from 'pg';
import { createTestDatabase, TestDatabase } from '@gatehouse/testing';
import { runCli } from '../cli';
import { captureIo } from '../test/capture-io';

/** `gatehouse explain` on members set up through the CLI itself, against a real PostgreSQL. */
describe('gatehouse explain', () => {
  let db: TestDatabase;
  let dataDir: string;
  let env: NodeJS.ProcessEnv;

  async function run(...args: string[]) {
    const io = captureIo();
    const code = await runCli(args, io, env);
    return { code, out: io.out(), err: io.err() };
  }
  async function ok(...args: string[]) {
    const r = await run(...args);
    expect(r).toMatchObject({ code: 0, err: '' });
    return r.out;
  }
  async function json(...args: string[]) {
    const r = await run(...args, '--format', 'json');
    return { code: r.code, err: r.err, body: JSON.parse(r.out) as Record<string, unknown> };
  }
  async function sql(text: string, params: unknown[] = []): Promise<void> {
    const c = new Client({ connectionString: db.url });
    await c.connect();
    try {
      await c.query(text, params);
    } finally {
      await c.end();
    }
  }

  beforeAll(async () => {
    db = await createTestDatabase();
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatehouse-cli-explain-'));
    env = { DATABASE_URL: db.url, DATA_DIR: dataDir };
    // The access-key secret a deployed gateway already has (creating one is announced on stderr,
    // see support-tools.int-spec.ts).
    fs.writeFileSync(path.join(dataDir, 'access-key-secret'), randomBytes(32).toString('hex') + '\n', {
      mode: 0o600,
    });
    for (const name of ['alice', 'bob', 'dave', 'erin']) {
      await ok('member', 'create', name);
      await ok('grant', name, 'acme/app', '--tags', 'v1.*,semver:>=2.0.0 <3.0.0');
    }
    for (const name of ['alice', 'bob', 'erin']) await ok('key', 'create', name, '--name', 'laptop');
    // bob's entitlement ran out yesterday (grant refuses a past expiry, so the clock is moved in SQL).
    await sql(
      `UPDATE entitlements SET expires_at = now() - interval '1 day'
        WHERE member_id = (SELECT id FROM members WHERE username = 'bob')`,
    );
    const keys = JSON.parse(await ok('key', 'list', '--member', 'dave', '--format', 'json'));
    expect(keys).toEqual([]);
    await ok('key', 'create', 'dave');
    const [daveKey] = JSON.parse(await ok('key', 'list', '--member', 'dave', '--format', 'json'));
    await ok('key', 'revoke', daveKey.id);
    await ok('member', 'disable', 'erin');
    // An earlier refusal, as the pull path records it (through a mirror: its request id and member tag).
    await sql(
      `INSERT INTO audit_events (id, occurred_at, request_id, username, action, repository, reference, outcome, reason, http_status,
         client_request_id, client_member_tag)
       VALUES (gen_random_uuid(), now() - interval '5 minutes', 'req-seen', 'alice', 'manifest.get', 'acme/app', 'v9', 'denied', 'tag_not_entitled', 404,
         'b-77', 'm1-00ff')`,
    );
    // A refusal of another target, and a refused login (a wrong key), which names no target.
    await sql(
      `INSERT INTO audit_events (id, occurred_at, request_id, username, action, repository, reference, outcome, reason, http_status)
       VALUES (gen_random_uuid(), now() - interval '4 minutes', 'req-other', 'alice', 'manifest.get', 'acme/other', 'v1', 'denied', 'repository_not_entitled', 404),
              (gen_random_uuid(), now() - interval '3 minutes', 'req-login', 'alice', 'token.refuse', NULL, NULL, 'denied', 'bad_credentials', 401)`,
    );
  });
  afterAll(async () => {
    await db?.drop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('allows an entitled tag, naming the rule, the key and the expiry (exit 0)', async () => {
    const text = await run('explain', 'alice', 'acme/app:v1.4.2');
    expect(text.code).toBe(0);
    expect(text.err).toBe('');
    expect(text.out).toMatch(/^ALLOWED: alice can pull acme\/app:v1\.4\.2\.\n/);
    expect(text.out).toContain('ok  member alice is active');
    expect(text.out).toMatch(/ok {2}1 usable access key: ghk_\S+ "laptop" active/);
    expect(text.out).toContain('ok  entitlement to acme/app admits v1.4.2 by rule "v1.*" (glob); no expiry');
    expect(text.out).toMatch(
      /Latest audit events of alice for acme\/app \(refusals first.*\):\n.*manifest\.get {2}v9 {2}denied \(tag_not_entitled\) 404 {2}req-seen/,
    );
    expect(text.out).toContain('req-seen  client-request b-77  member-tag m1-00ff\n');
    // Only that target's rows there; the refused login apart and labelled as one.
    const [targetPart, loginPart] = text.out.split('Refused logins of alice');
    expect(targetPart).not.toContain('req-other');
    expect(targetPart).not.toContain('token.refuse');
    expect(loginPart).toMatch(
      /^ \(credentials are checked before any target is named.*\):\n.*token\.refuse {2}login {2}denied \(bad_credentials\) 401 {2}req-login/,
    );

    const semver = await json('explain', 'alice', 'acme/app:v2.5.0');
    expect(semver).toMatchObject({
      code: 0,
      body: {
        allowed: true,
        reason: null,
        entitlement: { repository: 'acme/app', matchedRule: 'semver:>=2.0.0 <3.0.0', expiresAt: null },
        member: { status: 'active' },
        accessKeys: [expect.objectContaining({ name: 'laptop', status: 'active' })],
      },
    });
  });

  it('refuses a tag the rules do not admit, with what the member sees and the fix (exit 1)', async () => {
    const text = await run('explain', 'alice', 'acme/app:v3.0.0');
    expect(text.code).toBe(1);
    expect(text.out).toMatch(
      /^NOT ALLOWED: alice cannot pull acme\/app:v3\.0\.0 \(reason: tag_not_entitled\)\./,
    );
    expect(text.out).toContain(
      'NO  entitlement to acme/app does not admit v3.0.0: its rules are v1.*, semver:>=2.0.0 <3.0.0',
    );
    expect(text.out).toContain('404 MANIFEST_UNKNOWN');
    expect(text.out).toContain("gatehouse grant alice acme/app --tags 'v1.*,semver:>=2.0.0 <3.0.0,v3.0.0'");
    expect(text.err).toBe('error: alice cannot pull acme/app:v3.0.0 (tag_not_entitled)\n');

    expect((await json('explain', 'alice', 'acme/other:v1.0')).body).toMatchObject({
      allowed: false,
      reason: 'repository_not_entitled',
      entitlement: null,
    });
  });

  it('judges a case variant as the tag Forgejo serves for it: the reported rC hole stays shut', async () => {
    await ok('member', 'create', 'carol');
    await ok('key', 'create', 'carol');
    await ok('grant', 'carol', 'acme/app', '--tags', 'semver:>=2.0.0-beta <2.0.0-rc');
    for (const ref of ['acme/app:v2.0.0-rc.1', 'acme/app:v2.0.0-rC.1', 'acme/app:V2.0.0-RC.1']) {
      const r = await json('explain', 'carol', ref);
      expect({ ref, code: r.code, reason: r.body.reason }).toEqual({
        ref,
        code: 1,
        reason: 'tag_not_entitled',
      });
    }
    const variant = await run('explain', 'carol', 'acme/app:v2.0.0-BETA.2');
    expect(variant.code).toBe(0);
    expect(variant.out).toContain(
      'ok  entitlement to acme/app admits v2.0.0-BETA.2 (judged as v2.0.0-beta.2, the tag the upstream serves for it) by rule "semver:>=2.0.0-beta <2.0.0-rc" (semver)',
    );
  });

  it('refuses an expired entitlement', async () => {
    const r = await json('explain', 'bob', 'acme/app:v1.0');
    expect(r.code).toBe(1);
    expect(r.body).toMatchObject({ allowed: false, reason: 'entitlement_expired' });
    expect(JSON.stringify(r.body.checks)).toMatch(/entitlement to acme\/app expired at \d{4}-/);
    expect((await run('explain', 'bob', 'acme/app:v1.0')).out).toContain('404 NAME_UNKNOWN');
  });

  it('refuses a member whose only key is revoked', async () => {
    const r = await json('explain', 'dave', 'acme/app:v1.0');
    expect(r.code).toBe(1);
    expect(r.body).toMatchObject({
      allowed: false,
      reason: 'key_revoked',
      accessKeys: [expect.objectContaining({ status: 'revoked' })],
    });
    const text = (await run('explain', 'dave', 'acme/app:v1.0')).out;
    expect(text).toMatch(/NO {2}no usable access key: ghk_\S+ revoked at /);
    expect(text).toContain('ok  entitlement to acme/app admits v1.0');
    expect(text).toContain('401 UNAUTHORIZED');
    expect(text).toContain('gatehouse key create dave');
  });

  it('refuses a disabled member first, and an unknown one', async () => {
    const r = await json('explain', 'erin', 'acme/app:v1.0');
    expect(r.code).toBe(1);
    expect(r.body).toMatchObject({
      allowed: false,
      reason: 'member_disabled',
      member: { status: 'disabled' },
    });
    expect((await run('explain', 'erin', 'acme/app:v1.0')).out).toContain('gatehouse member enable erin');

    const unknown = await json('explain', 'zoe', 'acme/app:v1.0');
    expect(unknown).toMatchObject({
      code: 1,
      body: { allowed: false, reason: 'member_unknown', member: null },
    });
  });

  it('exits 2 for something that is not <repository>:<tag>', async () => {
    for (const ref of ['acme/app', 'acme/app@sha256:' + 'a'.repeat(64), 'Acme/App:v1', 'acme/app:-bad']) {
      const r = await run('explain', 'alice', ref);
      expect({ ref, code: r.code }).toEqual({ ref, code: 2 });
      expect(r.err).toMatch(/^error: /);
    }
  });
});
