import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { AuditQueryService, AuditService } from '@gatehouse/audit';
import { StackMember, startUpstreamGatewayStack, UpstreamGatewayStack } from '@gatehouse/testing/gateway';
import { deterministicBytes } from '@gatehouse/testing/upstream';

const run = promisify(execFile);

/**
 * The download route grammar through the real gateway and real curl: tags and versions with every
 * character Forgejo allows (`+`, `/`), repositories and packages called `packages` or `releases`,
 * package versions in any case, and the contract's owner-first path shapes served as the same routes.
 */
describe('download routes', () => {
  let stack: UpstreamGatewayStack;
  let bob: StackMember;
  const bytes = {
    build: deterministicBytes('tool-build7', 70_000),
    slash: deterministicBytes('tool-slash', 50_000),
    inPackages: deterministicBytes('repo-packages', 30_000),
    inReleases: deterministicBytes('repo-releases', 20_000),
    pkgReleases: deterministicBytes('pkg-releases', 40_000),
    rc: deterministicBytes('cli-rc', 10_000),
  };

  async function curl(args: string[]): Promise<{ status: number; body: Buffer; location: string | null }> {
    const { stdout } = await run(
      'curl',
      ['-sS', '-u', `${bob.username}:${bob.key}`, '-D', '-', '-o', '-', ...args],
      { encoding: 'buffer', maxBuffer: 16 * 1024 * 1024 },
    );
    // The last header block (after any followed redirect), then the body.
    let rest = stdout;
    let status = 0;
    let location: string | null = null;
    while (rest.subarray(0, 5).toString() === 'HTTP/') {
      const end = rest.indexOf('\r\n\r\n');
      const head = rest.subarray(0, end).toString();
      status = Number(head.split(' ')[1]);
      location = /^location: (.*)$/im.exec(head)?.[1] ?? null;
      rest = rest.subarray(end + 4);
    }
    return { status, body: rest, location };
  }
  const url = (p: string) => `${stack.gw.url}/downloads/${p}`;

  beforeAll(async () => {
    stack = await startUpstreamGatewayStack({ patLabel: 'download-routes' });
    stack.front.setTokenScopes(stack.pat, ['read:package', 'read:repository']);
    stack.front.addRelease('acme/tool', { tag: 'v1.4.0+build7', assets: { tool: bytes.build } });
    stack.front.addRelease('acme/tool', { tag: 'release/2026-01', assets: { tool: bytes.slash } });
    stack.front.addRelease('acme/packages', { tag: 'v1.0.0', assets: { 'p.txt': bytes.inPackages } });
    stack.front.addRelease('acme/releases', { tag: 'v1.0.0', assets: { 'r.txt': bytes.inReleases } });
    stack.front.addPackageFile('acme/releases', '1.4.0+build7', 'r.tgz', bytes.pkgReleases);
    stack.front.addPackageFile('acme/cli', '2.0.0-RC1', 'cli.tgz', bytes.rc);
    bob = await stack.member('routes', {
      'releases:acme/tool': ['semver:>=1.4.0', 'release/*'],
      'releases:acme/packages': ['*'],
      'releases:acme/releases': ['*'],
      'packages:acme/releases': ['semver:^1.4.0'],
      'packages:acme/cli': ['2.0.0-rc*'],
    });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('serves a release tag with + (plain or %2B) and one with / (plain or %2F)', async () => {
    for (const tag of ['v1.4.0+build7', 'v1.4.0%2Bbuild7']) {
      const r = await curl([url(`releases/acme/tool/${tag}/tool`)]);
      expect([tag, r.status]).toEqual([tag, 200]);
      expect(r.body.equals(bytes.build)).toBe(true);
    }
    for (const tag of ['release/2026-01', 'release%2F2026-01']) {
      const r = await curl([url(`releases/acme/tool/${tag}/tool`)]);
      expect([tag, r.status]).toEqual([tag, 200]);
      expect(r.body.equals(bytes.slash)).toBe(true);
    }
    // The listing's URLs are the kind-first paths, and they serve.
    const listing = JSON.parse((await curl([url('releases/acme/tool')])).body.toString()) as {
      releases: Array<{ tag: string; assets: Array<{ url: string }> }>;
    };
    const build = listing.releases.find((r) => r.tag === 'v1.4.0+build7')!;
    expect(build.assets[0].url).toBe(url('releases/acme/tool/v1.4.0%2Bbuild7/tool'));
    expect((await curl([build.assets[0].url])).status).toBe(200);
  });

  it('tells a repository or package called packages or releases from the route words', async () => {
    const inPackages = await curl([url('releases/acme/packages/v1.0.0/p.txt')]);
    expect(inPackages.status).toBe(200);
    expect(inPackages.body.equals(bytes.inPackages)).toBe(true);
    const inReleases = await curl([url('releases/acme/releases/v1.0.0/r.txt')]);
    expect(inReleases.body.equals(bytes.inReleases)).toBe(true);
    const pkg = await curl([url('packages/acme/releases/1.4.0+build7/r.tgz')]);
    expect(pkg.status).toBe(200);
    expect(pkg.body.equals(bytes.pkgReleases)).toBe(true);
    expect((await curl([url('releases/acme/packages')])).status).toBe(200);
  });

  it('judges a package version in the form Forgejo looks it up (lowercase), and audits that form', async () => {
    const r = await curl([url('packages/acme/cli/2.0.0-RC1/cli.tgz')]);
    expect(r.status).toBe(200);
    expect(r.body.equals(bytes.rc)).toBe(true);
    await stack.gw.app.get(AuditService).flush();
    const rows = await stack.gw.app
      .get(AuditQueryService)
      .find({ username: bob.username, action: 'download' });
    expect(rows.map((e) => e.reference)).toContain('2.0.0-rc1/cli.tgz');
  });

  it('answers the one 404 for tags git refuses and paths that are no route', async () => {
    const bodies = new Set<string>();
    for (const p of [
      'releases/acme/tool/v1..4/tool',
      'releases/acme/tool/v1.4.0~1/tool',
      'packages/acme/releases/%201.4.0/r.tgz',
      'releases/acme/tool/v1.4.0+build7',
      'nowhere',
    ]) {
      const r = await curl([url(p)]);
      expect([p, r.status]).toEqual([p, 404]);
      bodies.add(r.body.toString().replace(/"detail":[^}]*/g, ''));
    }
    expect(bodies.size).toBe(1);
    // A broken percent-encoding never reaches a route: Fastify answers 400 in the OCI envelope.
    const broken = await curl([url('releases/acme/tool/v1/%E0%A4%A')]);
    expect(broken.status).toBe(400);
    expect(broken.body.toString()).toMatch(/"errors"/);
  });

  it("serves the contract's owner-first shapes as the same routes", async () => {
    const old = await curl([url('acme/tool/releases/v1.4.0%2Bbuild7/tool')]);
    expect(old.status).toBe(200);
    expect(old.body.equals(bytes.build)).toBe(true);
    expect((await curl([url('acme/releases/packages/1.4.0+build7/r.tgz')])).status).toBe(404);
  });
});
