import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { randomUUID } from 'node:crypto';
import { MemberService } from '@gatehouse/members';
import {
  createTestGateway,
  startUpstreamGatewayStack,
  TestGateway,
  UpstreamGatewayStack,
} from '@gatehouse/testing/gateway';
import { ForgejoFront, generatePat, getFreePort, runCommand, seedImage } from '@gatehouse/testing/upstream';
import { runCli } from '../cli';
import { captureIo } from '../test/capture-io';
import type { RowResult } from '../verify/verify-result';

const root = resolve(__dirname, '../../../..');

interface Credentials {
  username: string;
  key: string;
}

function args(gw: TestGateway, who: Credentials, extra: string[] = []): string[] {
  return [
    'verify-oci',
    '--url',
    gw.url,
    '--username',
    who.username,
    '--password',
    who.key,
    '--image',
    'acme/app:v1.0.0',
    '--unentitled-tag',
    'v1.1.0',
    '--unknown-repository',
    'acme/nope',
    ...extra,
  ];
}

async function verify(gw: TestGateway, who: Credentials, extra: string[] = []) {
  const io = captureIo();
  const code = await runCli([...args(gw, who, extra), '--format', 'json'], io, {});
  const report = JSON.parse(io.out()) as { ok: boolean; rows: RowResult[] };
  const row = (name: string) => {
    const r = report.rows.find((x) => x.row === name);
    if (!r) throw new Error(`no row ${name} in ${io.out()}`);
    return r;
  };
  return { code, report, row, out: io.out(), err: io.err() };
}

/**
 * verify-oci against real stacks: the seeded registry behind the Forgejo front, the real
 * gateway on PostgreSQL, skopeo as the real client. One healthy stack where every row passes,
 * then stacks broken on purpose where the right rows fail and say why.
 */
describe('gatehouse verify-oci against a running stack', () => {
  let stack: UpstreamGatewayStack;
  let front: ForgejoFront;
  let gw: TestGateway;
  let pat: string;
  let member: Credentials;
  const extraGateways: TestGateway[] = [];

  const ADMIN_TOKEN = `verify-oci-admin-${randomUUID()}`;
  const STACK_ENV = { ADMIN_TOKEN, AUTH_FAILED_LOGINS_PER_USERNAME: '3' };
  const gatewayEnv = (token: string) => ({ ...stack.upstreamEnv(token), ...STACK_ENV });
  const enrol = (on: TestGateway, name: string, grants: Record<string, string[]>) =>
    stack.member(name, grants, on);

  beforeAll(async () => {
    stack = await startUpstreamGatewayStack({
      patLabel: 'verify-oci',
      keyName: 'verify-oci',
      gatewayEnv: STACK_ENV,
    });
    ({ front, gw, pat } = stack);
    member = await enrol(gw, 'verify', { 'acme/app': ['v1.0.0'] });
  });

  afterAll(async () => {
    for (const g of extraGateways) await g.close();
    await stack?.stop();
  });

  it('passes every row on a healthy stack, the rate limit included, and never prints the key', async () => {
    const image = seedImage(stack.seed, 'acme/app', 'v1.0.0');
    const run = await verify(gw, member, ['--check-rate-limit']);
    expect(run.report.rows.map((r) => `${r.row}: ${r.status}`)).toEqual([
      'challenge: PASS',
      'realm: PASS',
      'login: PASS',
      'entitled pull: PASS',
      'tags list: PASS',
      'pinned tag: PASS',
      'cache hit: PASS',
      'denial: unknown tag: PASS',
      'denial: unknown repository: PASS',
      'denial: bad credentials: PASS',
      'real client: PASS',
      'audit: SKIP',
      'rate limit: PASS',
    ]);
    expect(run.code).toBe(0);
    expect(run.row('challenge').evidence).toBe(
      `GET /v2/ → 401 Bearer realm="${gw.url}/auth/token",service="${gw.host}"`,
    );
    expect(run.row('entitled pull').evidence).toMatch(
      new RegExp(`index ${image.digest.slice(0, 19)}… → ${image.manifests.length} manifests → \\d+ blobs`),
    );
    expect(run.row('pinned tag').evidence).toBe(
      'GET /v2/acme/app/manifests/v1.1.0 → 404 MANIFEST_UNKNOWN: manifest unknown to registry',
    );
    expect(run.row('denial: unknown repository').evidence).toMatch(
      /acme\/nope\/manifests\/v1\.0\.0 → 404 NAME_UNKNOWN/,
    );
    expect(run.row('denial: bad credentials').evidence).toMatch(/→ 401 UNAUTHORIZED/);
    expect(run.row('cache hit').evidence).toMatch(
      /gatehouse_blob_cache_requests_total\{result="hit"\} \d+ → \d+ \(\+\d+\)/,
    );
    expect(run.row('real client').evidence).toMatch(
      /skopeo .*copy --all .*the digest the HTTP pull verified/,
    );
    expect(run.row('rate limit').evidence).toMatch(/→ 429 TOOMANYREQUESTS.*Retry-After: \d+/);
    expect(run.row('audit').evidence).toMatch(/--admin-url/);
    expect(run.out + run.err).not.toContain(member.key);
    expect(run.out + run.err).not.toContain(
      Buffer.from(`${member.username}:${member.key}`).toString('base64'),
    );
  });

  it('finds an audit event for every passed row through the admin API', async () => {
    const who = await enrol(gw, 'audited', { 'acme/app': ['v1.0.0'] });
    const run = await verify(gw, who, ['--no-client', '--admin-url', gw.url, '--admin-token', ADMIN_TOKEN]);
    expect(run.row('audit')).toMatchObject({ status: 'PASS' });
    expect(run.row('audit').evidence).toMatch(
      /found login, entitled pull, cache hit, pinned tag, unknown repository, bad credentials$/,
    );
    expect(run.out + run.err).not.toContain(ADMIN_TOKEN);
    expect(run.code).toBe(0);

    const wrong = await verify(gw, who, [
      '--no-client',
      '--admin-url',
      gw.url,
      '--admin-token',
      'x'.repeat(40),
    ]);
    expect(wrong.row('audit')).toMatchObject({ status: 'FAIL' });
    expect(wrong.row('audit').evidence).toMatch(/GET http:\/\/127\.0\.0\.1:\d+\/admin\/audit → 401/);
  });

  it('prints the table and a summary, and exits 1 naming the failed rows', async () => {
    // Its own member: the wrong key counts against that username's failed-login budget.
    const who = await enrol(gw, 'wrong-key', { 'acme/app': ['v1.0.0'] });
    const io = captureIo();
    // --wide: one line per row, so the evidence can be matched whole (the fitted table is checked
    // at COLUMNS=120 in support-tools.int-spec.ts).
    const code = await runCli([...args(gw, who, ['--password', 'not-the-key']), '--wide'], io, {});
    expect(code).toBe(1);
    expect(io.out()).toMatch(/check\s+│ result │ evidence/);
    expect(io.out()).toMatch(/login\s+│ FAIL\s+│ GET .*\/auth\/token .*→ 401 UNAUTHORIZED/);
    expect(io.out()).toMatch(/entitled pull\s+│ SKIP\s+│ needs a login/);
    expect(io.out()).toMatch(/13 checks: \d+ PASS, \d+ FAIL, \d+ SKIP/);
    expect(io.err()).toMatch(/error: verify-oci: FAIL in login, real client/);
  });

  it('exits 2 naming what is missing', async () => {
    const io = captureIo();
    expect(await runCli(['verify-oci', '--url', gw.url], io, {})).toBe(2);
    expect(io.err()).toMatch(
      /missing --username \(VERIFY_OCI_USERNAME\), --password \(VERIFY_OCI_PASSWORD\)/,
    );
  });

  it('fails the realm and login rows, naming the realm, when the realm points where nothing listens', async () => {
    const port = await getFreePort();
    const realm = `http://127.0.0.1:${port}/auth/token`;
    const broken = await createTestGateway({ env: { ...gatewayEnv(pat), OCI_REGISTRY_REALM: realm } });
    extraGateways.push(broken);
    const who = await enrol(broken, 'realm', { 'acme/app': ['v1.0.0'] });
    const run = await verify(broken, who, ['--no-client']);
    expect(run.code).toBe(1);
    expect(run.row('challenge')).toMatchObject({ status: 'PASS', evidence: expect.stringContaining(realm) });
    expect(run.row('realm')).toMatchObject({ status: 'FAIL' });
    expect(run.row('realm').evidence).toMatch(
      new RegExp(`realm ${realm} is not reachable from here: .*ECONNREFUSED`),
    );
    expect(run.row('login')).toMatchObject({ status: 'FAIL' });
    expect(run.row('login').evidence).toMatch(
      new RegExp(`token endpoint ${realm} unreachable: .*ECONNREFUSED`),
    );
    expect(run.row('entitled pull').status).toBe('SKIP');
  });

  it('warns, without failing, when the realm works but names another host than the URL', async () => {
    const who = await enrol(gw, 'warn', { 'acme/app': ['v1.0.0'] });
    const io = captureIo();
    const viaLocalhost = args(gw, who, ['--no-client', '--format', 'json']).map((a) =>
      a === gw.url ? `http://localhost:${gw.port}` : a,
    );
    const code = await runCli(viaLocalhost, io, {});
    const rows = (JSON.parse(io.out()) as { rows: RowResult[] }).rows;
    const realm = rows.find((r) => r.row === 'realm')!;
    expect(realm.status).toBe('WARN');
    expect(realm.evidence).toMatch(
      new RegExp(`its host 127\\.0\\.0\\.1:${gw.port} differs from the URL's localhost:${gw.port}`),
    );
    expect(rows.find((r) => r.row === 'entitled pull')!.status).toBe('PASS');
    expect(code).toBe(0);
  });

  it('fails the pull rows with the 502 envelope when Forgejo no longer accepts the service token', async () => {
    const revoked = generatePat('verify-oci-revoked');
    front.addToken(revoked, { scopes: ['read:package'] });
    const broken = await createTestGateway({ env: gatewayEnv(revoked) });
    extraGateways.push(broken);
    const who = await enrol(broken, 'revoked', { 'acme/app': ['v1.0.0'] });
    front.revokeToken(revoked);
    front.invalidateJwts();
    const run = await verify(broken, who);
    expect(run.code).toBe(1);
    expect(run.row('login').status).toBe('PASS');
    expect(run.row('entitled pull')).toMatchObject({ status: 'FAIL' });
    expect(run.row('entitled pull').evidence).toMatch(
      /GET \/v2\/acme\/app\/manifests\/v1\.0\.0 → 50[23] (UPSTREAM_ERROR|UNAVAILABLE): /,
    );
    expect(run.row('real client')).toMatchObject({ status: 'FAIL' });
    expect(run.row('real client').evidence).toMatch(/skopeo .*copy .*exit 1/);
    // Refusals decided by the entitlement alone never need the upstream.
    expect(run.row('pinned tag').status).toBe('PASS');
    expect(run.row('denial: bad credentials').status).toBe('PASS');
  });

  it('fails login with 401 when the member is disabled', async () => {
    const who = await enrol(gw, 'disabled', { 'acme/app': ['v1.0.0'] });
    await gw.app.get(MemberService).disable(who.username);
    const run = await verify(gw, who, ['--no-client']);
    expect(run.code).toBe(1);
    expect(run.row('login')).toMatchObject({ status: 'FAIL' });
    expect(run.row('login').evidence).toMatch(/→ 401 UNAUTHORIZED: .*member is active/);
    expect(run.row('challenge').status).toBe('PASS');
    expect(run.row('denial: bad credentials').status).toBe('PASS');
    expect(run.report.rows.filter((r) => r.status === 'FAIL').map((r) => r.row)).toEqual(['login']);
  });

  it('runs as the built CLI, reading the key from VERIFY_OCI_PASSWORD', async () => {
    const main = join(root, 'dist/apps/cli/src/commands/verify-oci.command.js');
    if (!existsSync(main))
      throw new Error(`${main} is missing: run npm run build first (scripts/test.sh does)`);
    const who = await enrol(gw, 'built', { 'acme/app': ['v1.0.0'] });
    const withoutPassword = args(gw, who).filter(
      (a, i, all) => a !== '--password' && all[i - 1] !== '--password',
    );
    const r = await runCommand(process.execPath, [join(root, 'bin/gatehouse.js'), ...withoutPassword], {
      env: { PATH: process.env.PATH, HOME: process.env.HOME, VERIFY_OCI_PASSWORD: who.key },
    });
    const failed = r.stdout.split('\n').filter((l) => l.includes('│ FAIL'));
    expect({ code: r.code, failed, stderr: r.stderr }).toEqual({
      code: 0,
      failed: [],
      stderr: expect.stringMatching(/^Verifying /),
    });
    expect(r.stdout).toMatch(/entitled pull\s+│ PASS\s+│ acme\/app:v1\.0\.0: index sha256:/);
    expect(r.stdout).toMatch(/real client\s+│ PASS/);
    expect(r.stdout).toMatch(/13 checks: 11 PASS, 2 SKIP\n$/);
    expect(r.stdout + r.stderr).not.toContain(who.key);
  });
});
