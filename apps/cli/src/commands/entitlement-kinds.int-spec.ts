import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createTestDatabase, TestDatabase } from '@gatehouse/testing';
import { runCli } from '../cli';
import { captureIo } from '../test/capture-io';

/** Entitlement kinds (images, releases, packages) through the CLI, against a real PostgreSQL. */
describe('entitlement kinds in grant, entitlements, revoke and explain', () => {
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

  beforeAll(async () => {
    db = await createTestDatabase();
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatehouse-cli-kinds-'));
    env = { DATABASE_URL: db.url, DATA_DIR: dataDir };
    fs.writeFileSync(path.join(dataDir, 'access-key-secret'), randomBytes(32).toString('hex') + '\n', {
      mode: 0o600,
    });
    await ok('member', 'create', 'alice');
    await ok('key', 'create', 'alice');
  });
  afterAll(async () => {
    await db?.drop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('keeps an image, a releases and a packages grant of the same name apart', async () => {
    expect(await ok('grant', 'alice', 'acme/tool', '--tags', 'v9')).toMatch(/may pull acme\/tool tags v9/);
    expect(await ok('grant', 'alice', 'releases:acme/tool', '--tags', 'semver:^1.2,v2.0.0-rc1')).toMatch(
      /may download releases:acme\/tool tags semver:\^1\.2, v2\.0\.0-rc1/,
    );
    expect(await ok('grant', 'alice', 'packages:Acme/CLI', '--tags', '1.4.*')).toMatch(
      /may download packages:acme\/cli versions 1\.4\.\*/,
    );
    const rows = JSON.parse(await ok('entitlements', '--member', 'alice', '--format', 'json')) as Array<
      Record<string, unknown>
    >;
    expect(rows.map((r) => [r.kind, r.repository, r.target])).toEqual([
      ['image', 'acme/tool', 'acme/tool'],
      ['packages', 'acme/cli', 'packages:acme/cli'],
      ['releases', 'acme/tool', 'releases:acme/tool'],
    ]);
    const only = JSON.parse(
      await ok('entitlements', '--repository', 'releases:acme/tool', '--format', 'json'),
    ) as Array<Record<string, unknown>>;
    expect(only.map((r) => r.target)).toEqual(['releases:acme/tool']);
  });

  it('explains release tags and package versions by the same matcher', async () => {
    const allowed = await run('explain', 'alice', 'releases:acme/tool@v1.2.0');
    expect(allowed.code).toBe(0);
    expect(allowed.out).toMatch(/^ALLOWED: alice can download releases:acme\/tool@v1\.2\.0\./);
    expect(allowed.out).toMatch(/rule "semver:\^1\.2" \(semver\)/);
    expect(allowed.out).toMatch(/downloads of releases:acme\/tool@v1\.2\.0 are served/);
    // Existence upstream is not checked; the note names the downloads' answer, not the registry's.
    expect(allowed.out).toMatch(/if it does not, the member gets 404 NAME_UNKNOWN/);

    // Release tags are git tags: case-sensitive, whatever the image tag setting.
    const upper = await run('explain', 'alice', 'releases:acme/tool@V2.0.0-RC1');
    expect(upper.code).toBe(1);
    expect(upper.out).toMatch(/reason: tag_not_entitled/);
    // The code the downloads answer with (one table for both), not a wording of its own.
    expect(upper.out).toMatch(/answer 404 NAME_UNKNOWN/);

    const denied = await run('explain', 'alice', 'releases:acme/tool@v3.0.0', '--format', 'json');
    expect(denied.code).toBe(1);
    expect(JSON.parse(denied.out)).toMatchObject({
      repository: 'releases:acme/tool',
      allowed: false,
      reason: 'tag_not_entitled',
    });
    const pkg = await run('explain', 'alice', 'packages:acme/cli@1.4.7');
    expect(pkg.code).toBe(0);
    const none = await run('explain', 'alice', 'packages:acme/other@1.0.0');
    expect(none.code).toBe(1);
    expect(none.out).toMatch(/reason: repository_not_entitled/);
    expect(none.out).toMatch(/gatehouse grant alice packages:acme\/other --tags 1\.0\.0/);
    // The image grant of the same name does not open the releases.
    expect((await run('explain', 'alice', 'acme/tool:v1.2.0')).code).toBe(1);
  });

  it('refuses malformed targets with the grammar in the message', async () => {
    const bad = await run('grant', 'alice', 'releases:acme/a/b', '--tags', '*');
    expect(bad.code).not.toBe(0);
    expect(bad.err).toMatch(/releases:<owner>\/<name>/);
    const badTag = await run('explain', 'alice', 'releases:acme/tool@-x');
    expect(badTag.code).toBe(2);
    expect(badTag.err).toMatch(/not a valid release tag/);
  });

  it('revokes one kind and leaves the others', async () => {
    expect(await ok('revoke', 'alice', 'releases:acme/tool')).toMatch(
      /may no longer download releases:acme\/tool/,
    );
    const rows = JSON.parse(await ok('entitlements', '--member', 'alice', '--format', 'json')) as Array<
      Record<string, unknown>
    >;
    expect(rows.map((r) => r.target)).toEqual(['acme/tool', 'packages:acme/cli']);
  });
});
