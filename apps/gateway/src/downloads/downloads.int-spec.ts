import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { AuditQueryService, AuditService } from '@gatehouse/audit';
import { EntitlementService } from '@gatehouse/entitlements';
import { StackMember, startUpstreamGatewayStack, UpstreamGatewayStack } from '@gatehouse/testing/gateway';
import { FrontRequestRecord, SeededDownloads, seedDownloads } from '@gatehouse/testing/upstream';

const run = promisify(execFile);
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/**
 * Entitled downloads through the real gateway in front of the Forgejo front's releases and
 * generic packages, driven by real curl and wget processes.
 */
describe('downloads: release assets and generic package files', () => {
  let stack: UpstreamGatewayStack;
  let seeded: SeededDownloads;
  let alice: StackMember;
  let dir: string;
  const asset = (r: FrontRequestRecord) => r.kind === 'asset';
  const packageFile = (r: FrontRequestRecord) => r.kind === 'package-file';

  async function curl(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    try {
      const { stdout, stderr } = await run('curl', ['-sS', ...args], { maxBuffer: 64 * 1024 * 1024 });
      return { code: 0, stdout, stderr };
    } catch (e) {
      const err = e as { code: number; stdout: string; stderr: string };
      return { code: err.code, stdout: err.stdout, stderr: err.stderr };
    }
  }
  /** curl's status code and headers (lower-cased) of one request. */
  async function curlStatus(args: string[]): Promise<{ status: number; headers: Record<string, string> }> {
    const headerFile = path.join(dir, `h-${Math.random()}`);
    const r = await curl(['-o', '/dev/null', '-D', headerFile, '-w', '%{http_code}', ...args]);
    const headers: Record<string, string> = {};
    for (const line of fs.readFileSync(headerFile, 'utf8').split('\r\n')) {
      const i = line.indexOf(':');
      if (i > 0) headers[line.slice(0, i).toLowerCase()] = line.slice(i + 1).trim();
    }
    return { status: Number(r.stdout), headers };
  }
  const auth = () => ['-u', `${alice.username}:${alice.key}`];
  const url = (p: string) => `${stack.gw.url}/downloads/${p}`;

  async function auditRows(reference: string) {
    await stack.gw.app.get(AuditService).flush();
    return (
      await stack.gw.app.get(AuditQueryService).find({ username: alice.username, action: 'download' })
    ).filter((e) => e.reference === reference);
  }

  beforeAll(async () => {
    stack = await startUpstreamGatewayStack({
      patLabel: 'downloads',
      gatewayEnv: { OCI_TAG_TTL_SECONDS: '1' },
    });
    stack.front.setTokenScopes(stack.pat, ['read:package', 'read:repository']);
    seeded = seedDownloads(stack.front);
    alice = await stack.member('dl', {
      'releases:acme/tool': ['semver:^1.0.0'],
      'packages:acme/cli': ['1.4.*'],
    });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatehouse-downloads-'));
  });
  afterAll(async () => {
    await stack?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('downloads an entitled 10 MB asset with curl byte for byte, then serves it again from the cache', async () => {
    const want = seeded.releases['v1.2.0']['tool-linux-amd64'];
    const out = path.join(dir, 'tool-1.2.0');
    stack.front.resetCounts();
    const first = await curl(['-f', ...auth(), '-o', out, url('releases/acme/tool/v1.2.0/tool-linux-amd64')]);
    expect(first).toMatchObject({ code: 0, stderr: '' });
    expect(sha(fs.readFileSync(out))).toBe(sha(want));
    expect(stack.front.countRequests(asset)).toBe(1);

    const again = path.join(dir, 'tool-1.2.0-again');
    const head = await curlStatus([...auth(), url('releases/acme/tool/v1.2.0/tool-linux-amd64')]);
    expect(head.status).toBe(200);
    expect(head.headers['content-length']).toBe(String(want.length));
    expect(head.headers['accept-ranges']).toBe('bytes');
    expect(head.headers['etag']).toMatch(/^"[0-9a-f-]{36}"$/);
    expect(head.headers['content-disposition']).toBe(
      `attachment; filename="tool-linux-amd64"; filename*=UTF-8''tool-linux-amd64`,
    );
    expect(head.headers['x-checksum-sha256']).toBe(sha(want));
    expect(
      (await curl(['-f', ...auth(), '-o', again, url('releases/acme/tool/v1.2.0/tool-linux-amd64')])).code,
    ).toBe(0);
    expect(sha(fs.readFileSync(again))).toBe(sha(want));
    expect(stack.front.countRequests(asset)).toBe(1);

    const rows = await auditRows('v1.2.0/tool-linux-amd64');
    expect(rows.map((r) => [r.outcome, r.httpStatus, r.cache, Number(r.bytes)]).sort()).toEqual(
      [
        ['allowed', 200, 'hit', want.length],
        ['allowed', 200, 'hit', want.length],
        ['allowed', 200, 'miss', want.length],
      ].sort(),
    );
    expect(rows[0]).toMatchObject({ repository: 'releases:acme/tool', digest: `sha256:${sha(want)}` });
    expect(rows[0].details).toMatchObject({ kind: 'releases', asset: 'tool-linux-amd64' });
  });

  it('answers Range with 206 and lets curl -C - and wget -c resume a cut download', async () => {
    const want = seeded.releases['v1.2.0']['tool-linux-amd64'];
    const partFile = path.join(dir, 'part');
    await curl([
      '-f',
      ...auth(),
      '-r',
      '1000-1999',
      '-o',
      partFile,
      url('releases/acme/tool/v1.2.0/tool-linux-amd64'),
    ]);
    expect(fs.readFileSync(partFile).equals(want.subarray(1000, 2000))).toBe(true);
    const ranged = await curlStatus([
      ...auth(),
      '-r',
      '1000-1999',
      url('releases/acme/tool/v1.2.0/tool-linux-amd64'),
    ]);
    expect(ranged.status).toBe(206);
    expect(ranged.headers['content-range']).toBe(`bytes 1000-1999/${want.length}`);

    const resumed = path.join(dir, 'resumed');
    fs.writeFileSync(resumed, want.subarray(0, 3_000_000));
    expect(
      (
        await curl([
          '-f',
          ...auth(),
          '-C',
          '-',
          '-o',
          resumed,
          url('releases/acme/tool/v1.2.0/tool-linux-amd64'),
        ])
      ).code,
    ).toBe(0);
    expect(sha(fs.readFileSync(resumed))).toBe(sha(want));

    const wgetted = path.join(dir, 'wget-resumed');
    fs.writeFileSync(wgetted, want.subarray(0, 5_000_000));
    await run('wget', [
      '-q',
      '-c',
      '--user',
      alice.username,
      '--password',
      alice.key,
      '--auth-no-challenge',
      '-O',
      wgetted,
      url('releases/acme/tool/v1.2.0/tool-linux-amd64'),
    ]);
    expect(sha(fs.readFileSync(wgetted))).toBe(sha(want));
    const tail = await curlStatus([
      ...auth(),
      '-r',
      `${want.length}-`,
      url('releases/acme/tool/v1.2.0/tool-linux-amd64'),
    ]);
    expect(tail.status).toBe(416);
  });

  it('lists only the entitled releases, and latest is the newest of them', async () => {
    const listing = await curl(['-f', ...auth(), url('releases/acme/tool')]);
    const body = JSON.parse(listing.stdout) as {
      releases: Array<{ tag: string; assets: Array<Record<string, unknown>> }>;
    };
    expect(body.releases.map((r) => r.tag)).toEqual(['v1.2.0', 'v1.0.0']);
    expect(listing.stdout).not.toContain('v2.0.0');
    const big = body.releases[0].assets.find((a) => a.name === 'tool-linux-amd64')!;
    expect(big).toMatchObject({
      size: seeded.releases['v1.2.0']['tool-linux-amd64'].length,
      sha256: sha(seeded.releases['v1.2.0']['tool-linux-amd64']),
      url: `${stack.gw.url}/downloads/releases/acme/tool/v1.2.0/tool-linux-amd64`,
    });
    const latest = await curl(['-f', ...auth(), url('releases/acme/tool/latest/NOTICE')]);
    expect(latest.stdout).toBe('licence\n');
  });

  it('answers the same 404 for an unentitled tag or version and an unknown one, without fetching the file', async () => {
    stack.front.resetCounts();
    const cases = [
      'releases/acme/tool/v2.0.0/tool-linux-amd64',
      'releases/acme/tool/v9.9.9/tool-linux-amd64',
      'releases/acme/tool/v1.2.0/no-such-file',
      'releases/acme/secret/v1.0.0/x',
      'packages/acme/cli/2.0.0/cli.tar.gz',
      'packages/acme/other/1.4.0/cli.tar.gz',
    ];
    const bodies = new Set<string>();
    for (const c of cases) {
      const r = await curl([...auth(), '-w', ' %{http_code}', url(c)]);
      expect(r.stdout.endsWith(' 404')).toBe(true);
      bodies.add(r.stdout.replace(/"detail":[^}]*|\s404$/g, ''));
    }
    expect(bodies.size).toBe(1);
    expect(stack.front.countRequests(asset)).toBe(0);
    expect(stack.front.countRequests(packageFile)).toBe(0);
    const refused = await auditRows('v2.0.0/tool-linux-amd64');
    expect(refused[0]).toMatchObject({ outcome: 'denied', httpStatus: 404, reason: 'tag_not_entitled' });
  });

  it('serves an entitled generic package file, checked against the sha256 Forgejo states', async () => {
    const want = seeded.packages['1.4.0']['cli.tar.gz'];
    const out = path.join(dir, 'cli.tar.gz');
    stack.front.resetCounts();
    expect((await curl(['-f', ...auth(), '-o', out, url('packages/acme/cli/1.4.0/cli.tar.gz')])).code).toBe(
      0,
    );
    expect(sha(fs.readFileSync(out))).toBe(sha(want));
    expect((await curl(['-f', ...auth(), '-o', out, url('packages/acme/cli/1.4.0/cli.tar.gz')])).code).toBe(
      0,
    );
    expect(stack.front.countRequests(packageFile)).toBe(1);
    const head = await curlStatus([...auth(), '-I', url('packages/acme/cli/1.4.0/cli.tar.gz')]);
    expect(head.headers['etag']).toBe(`"${sha(want)}"`);
  });

  it("lists an entitled package version's files, audited download.list; others are the same 404", async () => {
    const want = seeded.packages['1.4.0']['cli.tar.gz'];
    const res = await fetch(url('packages/acme/cli/1.4.0'), {
      headers: { authorization: alice.basic },
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      owner: 'acme',
      package: 'cli',
      version: '1.4.0',
      files: [
        {
          name: 'cli.tar.gz',
          size: want.length,
          sha256: sha(want),
          url: url('packages/acme/cli/1.4.0/cli.tar.gz'),
        },
      ],
    });
    const bodies = new Set<string>();
    for (const c of ['packages/acme/cli/2.0.0', 'packages/acme/cli/1.4.9', 'packages/acme/other/1.4.0']) {
      const r = await fetch(url(c), { headers: { authorization: alice.basic } });
      expect([c, r.status]).toEqual([c, 404]);
      bodies.add((await r.text()).replace(/"detail":[^}]*/g, ''));
    }
    expect(bodies.size).toBe(1);
    await stack.gw.app.get(AuditService).flush();
    const rows = await stack.gw.app
      .get(AuditQueryService)
      .find({ username: alice.username, action: 'download.list' });
    const listed = rows.filter((r) => r.repository === 'packages:acme/cli');
    expect(listed.map((r) => [r.reference, r.outcome, r.reason]).sort()).toEqual([
      ['1.4.0', 'allowed', null],
      ['1.4.9', 'denied', 'release_unknown'],
      ['2.0.0', 'denied', 'tag_not_entitled'],
    ]);
  });

  it('fills a package file once for concurrent first downloads (one upstream request)', async () => {
    const want = Buffer.alloc(3 * 1024 * 1024, 7);
    stack.front.addPackageFile('acme/cli', '1.4.1', 'cli-big.tar.gz', want);
    stack.front.resetCounts();
    const outs = [0, 1, 2].map((i) => path.join(dir, `big-${i}`));
    const results = await Promise.all(
      outs.map((o) => curl(['-f', ...auth(), '-o', o, url('packages/acme/cli/1.4.1/cli-big.tar.gz')])),
    );
    expect(results.map((r) => r.code)).toEqual([0, 0, 0]);
    for (const o of outs) expect(sha(fs.readFileSync(o))).toBe(sha(want));
    expect(stack.front.countRequests(packageFile)).toBe(1);
    const rows = await auditRows('1.4.1/cli-big.tar.gz');
    expect(rows.filter((r) => r.cache === 'miss')).toHaveLength(1);
  });

  it('follows a 303 to storage without the service credentials', async () => {
    stack.front.setDownloadServeDirect(true);
    stack.front.resetCounts();
    try {
      const out = path.join(dir, 'tool-1.0.0');
      expect(
        (await curl(['-f', ...auth(), '-o', out, url('releases/acme/tool/v1.0.0/tool-linux-amd64')])).code,
      ).toBe(0);
      expect(sha(fs.readFileSync(out))).toBe(sha(seeded.releases['v1.0.0']['tool-linux-amd64']));
      const hops = stack.front.requests.filter(asset);
      expect(hops.map((r) => [r.server, r.status, r.auth])).toEqual([
        ['front', 303, 'basic'],
        ['storage', 200, 'none'],
      ]);
    } finally {
      stack.front.setDownloadServeDirect(false);
    }
  });

  it('accepts a Bearer token carrying the download scope and refuses bad credentials with the Basic challenge', async () => {
    const token = await stack.token(alice, ['release:acme/tool:pull']);
    const ok = await curlStatus([
      '-H',
      `Authorization: Bearer ${token}`,
      url('releases/acme/tool/v1.0.0/checksums.txt'),
    ]);
    expect(ok.status).toBe(200);
    const bad = await curlStatus([
      '-u',
      `${alice.username}:wrong`,
      url('releases/acme/tool/v1.0.0/checksums.txt'),
    ]);
    expect(bad.status).toBe(401);
    expect(bad.headers['www-authenticate']).toMatch(/^Basic realm="/);
    const none = await curlStatus([url('releases/acme/tool')]);
    expect(none.status).toBe(401);
    const badBearer = await curlStatus(['-H', 'Authorization: Bearer nope', url('releases/acme/tool')]);
    expect(badBearer.status).toBe(401);
  });

  it("ties a Bearer token to its scope: an image or login token, or another target's, downloads nothing", async () => {
    const bob = await stack.member('dl-scope', {
      'acme/app': ['*'],
      'releases:acme/tool': ['semver:^1.0.0'],
      'packages:acme/cli': ['1.4.*'],
    });
    const asBearer = (token: string) => ['-H', `Authorization: Bearer ${token}`];
    const release = url('acme/tool/releases/v1.0.0/checksums.txt');
    const listing = url('acme/tool/releases');
    const pkg = url('acme/packages/cli/1.4.0/cli.tar.gz');
    const imageToken = await stack.token(bob, ['repository:acme/app:pull']);
    const loginToken = await stack.token(bob, []);
    const releaseToken = await stack.token(bob, ['release:acme/tool:pull']);
    const packageToken = await stack.token(bob, ['package:acme/cli:pull']);
    for (const [what, token, target] of [
      ['image token on a release', imageToken, release],
      ['image token on a listing', imageToken, listing],
      ['login token on a release', loginToken, release],
      ['package token on a release', packageToken, release],
      ['release token on a package', releaseToken, pkg],
    ] as const) {
      const refused = await curlStatus([...asBearer(token), target]);
      expect({ what, status: refused.status, challenge: refused.headers['www-authenticate'] }).toEqual({
        what,
        status: 401,
        challenge: expect.stringMatching(/^Basic realm="/),
      });
    }
    expect((await curlStatus([...asBearer(releaseToken), release])).status).toBe(200);
    expect((await curlStatus([...asBearer(releaseToken), listing])).status).toBe(200);
    expect((await curlStatus([...asBearer(packageToken), pkg])).status).toBe(200);
    expect((await curlStatus(['-u', `${bob.username}:${bob.key}`, release])).status).toBe(200);
    expect((await curlStatus(['-u', `${bob.username}:${bob.key}`, pkg])).status).toBe(200);

    // The refusal names the true reason and the scope that was needed, for support.
    await stack.gw.app.get(AuditService).flush();
    const refusals = await stack.gw.app
      .get(AuditQueryService)
      .find({ username: bob.username, action: 'download.auth.refuse' });
    expect(refusals.length).toBe(5);
    expect(refusals[0]).toMatchObject({ reason: 'insufficient_scope', httpStatus: 401 });
    expect(refusals.map((r) => (r.details as { scopeRequired?: string }).scopeRequired).sort()).toEqual([
      'package:acme/cli:pull',
      'release:acme/tool:pull',
      'release:acme/tool:pull',
      'release:acme/tool:pull',
      'release:acme/tool:pull',
    ]);
  });

  it('grants download scopes at the token endpoint only for entitled targets (GET and POST)', async () => {
    const form = new URLSearchParams({
      grant_type: 'password',
      username: alice.username,
      password: alice.key,
      service: stack.gw.host,
      scope: 'release:acme/tool:pull package:acme/cli:pull release:acme/other:pull package:acme/tool:pull',
    });
    const res = await fetch(`${stack.gw.url}/auth/token`, { method: 'POST', body: form });
    expect(res.status).toBe(200);
    const { access_token: token } = (await res.json()) as { access_token: string };
    const claims = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()) as {
      access: unknown[];
    };
    expect(claims.access).toEqual([
      { type: 'release', name: 'acme/tool', actions: ['pull'] },
      { type: 'package', name: 'acme/cli', actions: ['pull'] },
    ]);
  });

  it('re-checks release metadata after the TTL, serves it stale with Warning: 299 when the token lost read:repository, and /readyz says why', async () => {
    expect((await curlStatus([...auth(), url('releases/acme/tool')])).status).toBe(200);
    stack.front.setTokenScopes(stack.pat, ['read:package']);
    try {
      await new Promise((r) => setTimeout(r, 1200));
      const stale = await curlStatus([...auth(), url('releases/acme/tool')]);
      expect(stale.status).toBe(200);
      expect(stale.headers['warning']).toMatch(
        /^299 - "upstream unavailable; serving the last known release metadata/,
      );
      const ready = await fetch(`${stack.gw.url}/readyz`);
      const body = (await ready.json()) as {
        details: Record<string, { status: string; message?: string; reason?: string }>;
      };
      expect(ready.status).toBe(503);
      expect(body.details.releases).toMatchObject({ status: 'down', reason: 'token_missing_scope' });
      expect(body.details.releases.message).toMatch(
        /lacks read:repository.*Fix: create a token with scopes read:package and read:repository/,
      );
      expect(stack.gw.rawLogs()).toMatch(/lacks read:repository/);
      // A repository never listed has nothing stale to serve: the upstream failure is a 5xx, not a 404.
      await stack.gw.app.get(EntitlementService).grant(alice.username, 'releases:acme/other', ['*']);
      const cold = await curlStatus([...auth(), url('releases/acme/other')]);
      expect(cold.status).toBeGreaterThanOrEqual(500);
    } finally {
      stack.front.setTokenScopes(stack.pat, ['read:package', 'read:repository']);
    }
    const again = await fetch(`${stack.gw.url}/readyz`);
    expect([200, 503]).toContain(again.status);
  });

  it('finds downloads and refusals with gatehouse audit --action download', async () => {
    await stack.gw.app.get(AuditService).flush();
    const rows = await stack.gw.app
      .get(AuditQueryService)
      .find({ action: 'download', username: alice.username });
    expect(rows.some((r) => r.outcome === 'allowed' && r.cache === 'hit')).toBe(true);
    expect(rows.some((r) => r.outcome === 'denied' && r.reason === 'tag_not_entitled')).toBe(true);
    expect(rows.some((r) => r.repository === 'packages:acme/cli' && r.outcome === 'allowed')).toBe(true);
    const metrics = await (await fetch(`${stack.gw.url}/metrics`)).text();
    expect(metrics).toMatch(/gatehouse_downloads_total\{kind="releases",outcome="allowed",cache="hit"\} \d+/);
    expect(metrics).toMatch(
      /gatehouse_downloads_total\{kind="packages",outcome="allowed",cache="miss"\} [1-9]\d*/,
    );
  });

  it('makes one upstream request for concurrent first downloads of a release asset', async () => {
    const want = Buffer.alloc(4 * 1024 * 1024, 3);
    stack.front.addRelease('acme/tool', { tag: 'v1.3.0', assets: { 'tool-linux-arm64': want } });
    await new Promise((r) => setTimeout(r, 1100)); // the release list's TTL in this suite
    stack.front.resetCounts();
    const outs = [0, 1, 2].map((i) => path.join(dir, `arm-${i}`));
    const results = await Promise.all(
      outs.map((o) => curl(['-f', ...auth(), '-o', o, url('releases/acme/tool/v1.3.0/tool-linux-arm64')])),
    );
    expect(results.map((r) => r.code)).toEqual([0, 0, 0]);
    for (const o of outs) expect(sha(fs.readFileSync(o))).toBe(sha(want));
    expect(stack.front.countRequests(asset)).toBe(1);
  });
});
