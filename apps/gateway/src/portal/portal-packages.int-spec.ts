import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { AuditQueryService, AuditService } from '@gatehouse/audit';
import { startUpstreamGatewayStack, StackMember, UpstreamGatewayStack } from '@gatehouse/testing/gateway';
import { deterministicBytes, seedDownloads, SeededDownloads } from '@gatehouse/testing/upstream';

const run = promisify(execFile);
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const decode = (s: string) => s.replace(/&#(\d+);/g, (_, n: string) => String.fromCharCode(Number(n)));

interface ListedVersion {
  version: string;
  files: Array<{ name: string; size: number; sha256: string | null; url: string }> | null;
}

/**
 * Generic packages listed for a member: the `/downloads/packages/<owner>/<name>` listing (the
 * download pipeline, one matcher, audit) and the portal's "What I may download" built on it, in
 * front of the Forgejo front's package API; the printed curl and wget lines run as printed.
 */
describe('generic packages listed: the /downloads/ listing and the portal', () => {
  let stack: UpstreamGatewayStack;
  let seeded: SeededDownloads;
  let pkg: StackMember;
  let releasesOnly: StackMember;
  let ghost: StackMember;
  const rc = deterministicBytes('cli-1.5.0-rc1', 120_000);

  const list = (who: StackMember, name = 'cli', authorization = who.basic) =>
    fetch(`${stack.gw.url}/downloads/packages/acme/${name}`, { headers: { authorization } });

  async function signIn(who: StackMember): Promise<string> {
    const res = await fetch(`${stack.gw.url}/portal/login`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'sec-fetch-site': 'same-origin' },
      body: new URLSearchParams({ username: who.username, key: who.key }).toString(),
    });
    expect(res.status).toBe(303);
    return res.headers.get('set-cookie')!.split(';')[0];
  }

  beforeAll(async () => {
    stack = await startUpstreamGatewayStack({ patLabel: 'portal-packages' });
    stack.front.setTokenScopes(stack.pat, ['read:package', 'read:repository']);
    seeded = seedDownloads(stack.front);
    // Uploaded last (newest), in upper case: Forgejo lists it so and finds it by `1.5.0-rc1`.
    stack.front.addPackageFile('acme/cli', '1.5.0-RC1', 'cli.tar.gz', rc);
    // A package whose name holds "cli": the upstream's substring search returns it too.
    stack.front.addPackageFile('acme/cli-extras', '1.4.9', 'extras.tgz', Buffer.from('extras'));
    pkg = await stack.member('pkg', {
      'packages:acme/cli': ['1.4.*', '1.5.0-rc1'],
      'releases:acme/tool': ['v1.0.0'],
    });
    releasesOnly = await stack.member('pkg-none', { 'releases:acme/tool': ['*'] });
    ghost = await stack.member('pkg-ghost', { 'packages:acme/nothing': ['*'] });
  }, 180_000);
  afterAll(() => stack?.stop());

  it('lists only the entitled versions of a package, newest first, with sizes and sha256', async () => {
    const res = await list(pkg);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { versions: ListedVersion[] };
    expect(body.versions.map((v) => v.version)).toEqual(['1.5.0-RC1', '1.4.0']);
    const file140 = seeded.packages['1.4.0']['cli.tar.gz'];
    expect(body.versions[1].files).toEqual([
      {
        name: 'cli.tar.gz',
        size: file140.length,
        sha256: sha(file140),
        url: `${stack.gw.url}/downloads/packages/acme/cli/1.4.0/cli.tar.gz`,
      },
    ]);
    // The listed URL serves the listed bytes.
    const got = await fetch(body.versions[0].files![0].url, { headers: { authorization: pkg.basic } });
    expect(got.status).toBe(200);
    expect(sha(Buffer.from(await got.arrayBuffer()))).toBe(sha(rc));
    // A token carrying the package's download scope lists it; an image token does not.
    const token = await stack.token(pkg, ['package:acme/cli:pull']);
    expect((await list(pkg, 'cli', `Bearer ${token}`)).status).toBe(200);
    const imageToken = await stack.token(pkg, ['repository:acme/app:pull']);
    expect((await list(pkg, 'cli', `Bearer ${imageToken}`)).status).toBe(401);
  });

  it('answers an unentitled package and an unknown one alike, and audits the true reason', async () => {
    const unentitled = await list(releasesOnly);
    const unknown = await list(ghost, 'nothing');
    expect(unentitled.status).toBe(404);
    expect(unknown.status).toBe(404);
    // The same body but for the request's own id.
    const body = async (r: Response) => (await r.text()).replace(/[0-9a-f-]{36}/g, '<id>');
    expect(await body(unentitled)).toBe(await body(unknown));
    await stack.gw.app.get(AuditService).flush();
    const rows = await stack.gw.app.get(AuditQueryService).find({ action: 'download.list' });
    const reasonOf = (who: StackMember) =>
      rows.filter((r) => r.username === who.username).map((r) => [r.repository, r.reason]);
    expect(reasonOf(releasesOnly)).toEqual([['packages:acme/cli', 'repository_not_entitled']]);
    expect(reasonOf(ghost)).toEqual([['packages:acme/nothing', 'repository_unknown_upstream']]);
    expect(reasonOf(pkg)).toContainEqual(['packages:acme/cli', null]);
  });

  it('shows the packages in the portal with files, and the printed curl and wget lines download them', async () => {
    const res = await fetch(`${stack.gw.url}/portal/downloads`, { headers: { cookie: await signIn(pkg) } });
    expect(res.status).toBe(200);
    const html = await res.text();
    const card = /<article class="card package" data-package="acme\/cli">([\s\S]*?)<\/article>/.exec(
      html,
    )![1];
    expect([...card.matchAll(/<h3>([^<]+)<\/h3>/g)].map((m) => m[1])).toEqual(['1.5.0-RC1', '1.4.0']);
    expect(card).not.toContain('2.0.0');
    expect(card).not.toContain('extras');
    expect(card).toContain('500.0 kB');
    expect(card).toContain(`sha256:${sha(seeded.packages['1.4.0']['cli.tar.gz'])}`);
    const lines = [...html.matchAll(/<pre><code>((?:curl|wget) [^<]+)<\/code><\/pre>/g)].map((m) =>
      decode(m[1]),
    );
    const fileUrl = `${stack.gw.url}/downloads/packages/acme/cli/1.4.0/cli.tar.gz`;
    const curl = lines.find((l) => l.startsWith('curl') && l.endsWith(fileUrl))!;
    const wget = lines.find((l) => l.startsWith('wget') && l.endsWith(fileUrl))!;
    expect(curl).toBe(`curl -fL -u ${pkg.username}: -O -C - ${fileUrl}`);
    expect(wget).toBe(`wget --user ${pkg.username} --ask-password -c ${fileUrl}`);
    // Release files carry the wget line too.
    expect(lines).toContain(
      `wget --user ${pkg.username} --ask-password -c ${stack.gw.url}/downloads/releases/acme/tool/v1.0.0/checksums.txt`,
    );
    const want = seeded.packages['1.4.0']['cli.tar.gz'];
    for (const [line, typed] of [
      // The printed lines, with the key given where curl and wget would ask for it.
      [curl, curl.replace(`-u ${pkg.username}:`, `-u ${pkg.username}:${pkg.key}`)],
      [wget, wget.replace('--ask-password', `--password=${pkg.key}`)],
    ]) {
      expect(typed).not.toBe(line);
      const dir = mkdtempSync(join(tmpdir(), 'portal-packages-'));
      try {
        await run('bash', ['-c', typed], { cwd: dir });
        expect(sha(readFileSync(join(dir, 'cli.tar.gz')))).toBe(sha(want));
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
    // A member without a packages grant sees none, and no other member's.
    const none = await fetch(`${stack.gw.url}/portal/downloads`, {
      headers: { cookie: await signIn(releasesOnly) },
    });
    const noneHtml = await none.text();
    expect(noneHtml).toContain('No generic packages are granted to you now.');
    expect(noneHtml).not.toContain('acme/cli');
  }, 120_000);
});
