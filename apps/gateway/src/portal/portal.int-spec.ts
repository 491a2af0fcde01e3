import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { AuditQueryService, AuditService } from '@gatehouse/audit';
import { EntitlementService } from '@gatehouse/entitlements';
import { AccessKeyService } from '@gatehouse/members';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startUpstreamGatewayStack, StackMember, UpstreamGatewayStack } from '@gatehouse/testing/gateway';
import { seedDownloads, SeededDownloads } from '@gatehouse/testing/upstream';

const run = promisify(execFile);

/** A form as a browser posts it from the portal's own page, from one client address. */
function post(
  stack: UpstreamGatewayStack,
  path: string,
  form: Record<string, string>,
  from: string,
  cookie = '',
) {
  return fetch(`${stack.gw.url}${path}`, {
    method: 'POST',
    redirect: 'manual',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      'sec-fetch-site': 'same-origin',
      'x-forwarded-for': from,
      ...(cookie ? { cookie } : {}),
    },
    body: new URLSearchParams(form).toString(),
  });
}

async function signIn(stack: UpstreamGatewayStack, who: StackMember, from = '10.9.0.1'): Promise<string> {
  const res = await post(stack, '/portal/login', { username: who.username, key: who.key }, from);
  expect(res.status).toBe(303);
  expect(res.headers.get('location')).toBe('/portal/');
  const set = res.headers.get('set-cookie')!;
  expect(set).toMatch(
    /^gatehouse_portal=[\w-]{43}; Max-Age=\d+; Path=\/portal\/; HttpOnly; SameSite=Strict$/,
  );
  return set.split(';')[0];
}

const page = (stack: UpstreamGatewayStack, path: string, cookie: string) =>
  fetch(`${stack.gw.url}${path}`, { redirect: 'manual', headers: { cookie } });

/** The text of every `<pre id="…">` block, entities decoded. */
function blocks(html: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of html.matchAll(/<pre id="([^"]+)"><code>([\s\S]*?)<\/code><\/pre>/g))
    out[m[1]] = m[2].replace(/&#(\d+);/g, (_, n: string) => String.fromCharCode(Number(n)));
  return out;
}

describe('the customer portal', () => {
  let stack: UpstreamGatewayStack;
  let narrow: StackMember;
  let other: StackMember;
  let seeded: SeededDownloads;

  beforeAll(async () => {
    stack = await startUpstreamGatewayStack({
      gatewayEnv: {
        TRUST_PROXY: 'loopback',
        AUTH_FAILED_LOGINS_PER_IP: '4',
        AUTH_FAILED_LOGINS_PER_USERNAME: '3',
      },
    });
    stack.front.setTokenScopes(stack.pat, ['read:package', 'read:repository']);
    seeded = seedDownloads(stack.front);
    narrow = await stack.member('narrow', { 'acme/app': ['v1.*'] });
    other = await stack.member('other', { 'acme/tool': ['*'] });
  }, 180_000);
  afterAll(() => stack?.stop());

  it('lists exactly the tags the registry admits, newest first, with commands that work', async () => {
    const cookie = await signIn(stack, narrow);
    const res = await page(stack, '/portal/overview', cookie);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-security-policy')).toContain("script-src 'self'");
    const html = await res.text();
    // The list is the registry's own tags/list decision for this member, audited as one (before this
    // test asks the registry itself).
    const audit = stack.gw.app.get(AuditService);
    await audit.flush(10_000);
    const rows = await stack.gw.app
      .get(AuditQueryService)
      .find({ username: narrow.username, action: 'tags.list', limit: 10 });
    expect(rows.map((r) => [r.outcome, r.memberId, r.repository])).toContainEqual([
      'allowed',
      narrow.id,
      'acme/app',
    ]);
    const shown = [...html.matchAll(/<ul class="tags">([\s\S]*?)<\/ul>/g)].flatMap((m) =>
      [...m[1].matchAll(/<li><code>([^<]*)<\/code>/g)].map((t) => t[1]),
    );
    expect(shown).toEqual(['v1.1.0', 'v1.0.0']);
    // The registry's own answer for this member: the same set, nothing the rules refuse.
    const token = await stack.token(narrow, ['repository:acme/app:pull']);
    const listed = await fetch(`${stack.gw.url}/v2/acme/app/tags/list`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(((await listed.json()) as { tags: string[] }).tags.sort()).toEqual([...shown].sort());
    // The digest shown is the one the registry serves for the tag.
    const head = await fetch(`${stack.gw.url}/v2/acme/app/manifests/v1.0.0`, {
      method: 'HEAD',
      headers: {
        authorization: `Bearer ${token}`,
        accept: 'application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json',
      },
    });
    expect(html).toContain(
      `<li><code>v1.0.0</code> <code class="digest">${head.headers.get('docker-content-digest')}</code>`,
    );
    expect(html).not.toContain('latest');
    expect(html).not.toContain('v2.0.0-rc.1');
    expect(html).not.toContain(narrow.key);

    const printed = blocks(html);
    const entry = Object.keys(printed).find((k) => k.endsWith('-skopeo'))!;
    expect(printed['login-command']).toBe(
      `docker login ${stack.gw.host} -u ${narrow.username} --password-stdin`,
    );
    // The printed skopeo line, run as printed (plus plain http for the test gateway).
    const line = printed[entry].replace('skopeo inspect', 'skopeo inspect --tls-verify=false');
    const { stdout } = await run('bash', ['-c', line], {
      env: { ...process.env, GATEHOUSE_KEY: narrow.key },
    });
    expect(JSON.parse(stdout)).toMatchObject({ Name: `${stack.gw.host}/acme/app` });
    expect(printed['pull-secret']).toContain('<YOUR-ACCESS-KEY>');
  }, 120_000);

  it('shows only the signed-in member: URL tampering and a portal cookie elsewhere reach nothing', async () => {
    const cookie = await signIn(stack, narrow);
    for (const path of [
      `/portal/overview?member=${other.username}`,
      `/portal/overview?username=${other.username}&repository=acme/tool`,
    ]) {
      const html = await (await page(stack, path, cookie)).text();
      expect(html).toContain(narrow.username);
      expect(html).not.toContain(other.username);
      expect(html).not.toContain('acme/tool');
    }
    // The other member's own activity exists (a sign-in); no page, whatever the URL says, shows it.
    await signIn(stack, other, '10.9.0.2');
    for (const path of [
      `/portal/activity?member=${other.username}`,
      `/portal/activity?username=${other.username}&memberId=${other.id}`,
      `/portal/downloads?member=${other.username}&repository=acme/tool`,
    ]) {
      const res = await page(stack, path, cookie);
      expect(res.status).toBe(200);
      const html = await res.text();
      expect(html).toContain(narrow.username);
      expect(html).not.toContain(other.username);
    }
    for (const path of [
      `/portal/members/${other.username}`,
      `/portal/activity/${other.username}`,
      `/portal/overview/${other.username}`,
      `/portal/downloads/releases/acme/tool`,
    ])
      expect([path, (await page(stack, path, cookie)).status]).toEqual([path, 404]);
    // Signed out, and a portal cookie presented to the console: sign-in pages, no data.
    expect((await page(stack, '/portal/overview', '')).headers.get('location')).toBe('/portal/login');
    const asConsole = await page(
      stack,
      '/console/members',
      cookie.replace('gatehouse_portal', 'gatehouse_console'),
    );
    expect(asConsole.headers.get('location')).toBe('/console/login');
  });

  it('shows a key expiry, and signs out only with the form of this session', async () => {
    const soon = new Date(Date.now() + 5 * 86_400_000);
    const { key } = await stack.gw.app.get(AccessKeyService).create(narrow.username, { expiresAt: soon });
    const cookie = await signIn(stack, { ...narrow, key });
    const html = await (await page(stack, '/portal/overview', cookie)).text();
    expect(html).toMatch(
      /<span class="key-expiry">expires on <time datetime="[^"]+"[^>]*>[^<]+<\/time> \(in 5 days\)/,
    );
    expect((await post(stack, '/portal/logout', { _csrf: 'wrong' }, '10.9.0.1', cookie)).status).toBe(403);
    const csrf = /name="_csrf" value="([^"]+)"/.exec(html)![1];
    const out = await post(stack, '/portal/logout', { _csrf: csrf }, '10.9.0.1', cookie);
    expect(out.status).toBe(303);
    expect((await page(stack, '/portal/overview', cookie)).headers.get('location')).toBe('/portal/login');
  });

  it('warns of an entitlement expiring soon on the page, a pull and a download (curl sees the Warning header)', async () => {
    const expiring = await stack.member('expiring', {});
    const soon = new Date(Date.now() + 3 * 86_400_000);
    await stack.gw.app
      .get(EntitlementService)
      .grant(expiring.username, 'acme/app', ['v1.0.0'], { expiresAt: soon });
    const html = await (await page(stack, '/portal/overview', await signIn(stack, expiring))).text();
    expect(html).toMatch(
      /<h2 id="expiring">Expiring soon<\/h2><ul><li>Your access to acme\/app expires on <time/,
    );
    // A member with no expiry sees no warning.
    expect(await (await page(stack, '/portal/overview', await signIn(stack, narrow))).text()).not.toContain(
      'Expiring soon',
    );
    const token = await stack.token(expiring, ['repository:acme/app:pull']);
    const { stdout } = await run('curl', [
      '-sS',
      '-o',
      '/dev/null',
      '-D',
      '-',
      '-H',
      `Authorization: Bearer ${token}`,
      '-H',
      'Accept: application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json',
      `${stack.gw.url}/v2/acme/app/manifests/v1.0.0`,
    ]);
    expect(stdout).toMatch(/^HTTP\/1\.1 200/);
    const iso = soon.toISOString().replace(/\.\d{3}Z$/, 'Z');
    expect(stdout).toContain(`warning: 299 - "your access to acme/app expires on ${iso}"`);
    // A download through a releases grant expiring soon carries its own line.
    await stack.gw.app
      .get(EntitlementService)
      .grant(expiring.username, 'releases:acme/tool', ['v1.0.0'], { expiresAt: soon });
    const downloaded = await run('curl', [
      '-sS',
      '-o',
      '/dev/null',
      '-D',
      '-',
      '-u',
      `${expiring.username}:${expiring.key}`,
      `${stack.gw.url}/downloads/releases/acme/tool/v1.0.0/checksums.txt`,
    ]);
    expect(downloaded.stdout).toMatch(/^HTTP\/1\.1 200/);
    expect(downloaded.stdout.match(/^warning: .*$/gim)!.map((l) => l.trim())).toEqual([
      `warning: 299 - "your access to acme/tool expires on ${iso}"`,
    ]);
  });

  it("shows the member's own activity, a refused unknown and a refused unentitled tag alike", async () => {
    const who = await stack.member('activity', { 'acme/app': ['v1.0.0'] });
    const token = await stack.token(who, ['repository:acme/app:pull']);
    const accept = 'application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json';
    for (const tag of ['v1.0.0', 'v1.1.0', 'no-such-tag']) {
      const r = await fetch(`${stack.gw.url}/v2/acme/app/manifests/${tag}`, {
        headers: { authorization: `Bearer ${token}`, accept },
      });
      await r.arrayBuffer();
    }
    const cookie = await signIn(stack, who);
    let html = '';
    // A token, three manifests and this portal sign-in.
    for (let i = 0; i < 50 && (html.match(/<tr><td>/g) ?? []).length < 5; i++) {
      await new Promise((r) => setTimeout(r, 200));
      html = await (await page(stack, '/portal/activity', cookie)).text();
    }
    const rows = [
      ...html.matchAll(/<tr><td>.*?<\/td><td>(.*?)<\/td><td><code>(.*?)<\/code><\/td><td>(.*?)<\/td><\/tr>/g),
    ];
    const byRef = (ref: string) => rows.find((r) => r[2].startsWith(`acme/app ${ref}`))?.[3];
    expect(byRef('v1.0.0')).toBe('served');
    expect(byRef('v1.1.0')).toBe('refused: not found, or not granted to you');
    expect(byRef('no-such-tag')).toBe(byRef('v1.1.0'));
    expect(html).not.toMatch(/tag_not_entitled|tag_unknown_upstream/);
    // Another member's rows are not here.
    expect(html).not.toContain(narrow.username);
  });

  it('lists the entitled releases with sizes, and the printed curl and wget lines download the file', async () => {
    const who = await stack.member('dl', { 'releases:acme/tool': ['semver:^1.0.0'] });
    const html = await (await page(stack, '/portal/downloads', await signIn(stack, who))).text();
    const tags = [...html.matchAll(/<h3>([^<]+)<\/h3>/g)].map((m) => m[1]);
    expect(tags.sort()).toEqual(['v1.0.0', 'v1.2.0']);
    expect(html).toContain('10.5 MB');
    const line = [...html.matchAll(/<pre><code>(curl [^<]+)<\/code><\/pre>/g)]
      .map((m) => m[1].replace(/&#(\d+);/g, (_, n: string) => String.fromCharCode(Number(n))))
      .find((l) => l.includes('/v1.0.0/checksums.txt'))!;
    expect(line).toBe(
      `curl -fL -u ${who.username}: -O -C - ${stack.gw.url}/downloads/releases/acme/tool/v1.0.0/checksums.txt`,
    );
    const dir = mkdtempSync(join(tmpdir(), 'portal-curl-'));
    try {
      // The printed line, with the key typed where curl would prompt for it.
      await run('bash', ['-c', line.replace(`-u ${who.username}:`, `-u ${who.username}:${who.key}`)], {
        cwd: dir,
      });
      expect(readFileSync(join(dir, 'checksums.txt'))).toEqual(seeded.releases['v1.0.0']['checksums.txt']);
      // The printed wget line, with the key given where wget would ask for it.
      const wget = [...html.matchAll(/<pre><code>(wget [^<]+)<\/code><\/pre>/g)]
        .map((m) => m[1].replace(/&#(\d+);/g, (_, n: string) => String.fromCharCode(Number(n))))
        .find((l) => l.includes('/v1.0.0/checksums.txt'))!;
      expect(wget).toBe(
        `wget --user ${who.username} --ask-password -c ${stack.gw.url}/downloads/releases/acme/tool/v1.0.0/checksums.txt`,
      );
      rmSync(join(dir, 'checksums.txt'));
      await run('bash', ['-c', `${wget.replace('--ask-password', '--password "$KEY"')} -q`], {
        cwd: dir,
        env: { ...process.env, KEY: who.key },
      });
      expect(readFileSync(join(dir, 'checksums.txt'))).toEqual(seeded.releases['v1.0.0']['checksums.txt']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('audits each portal sign-in as portal.signin, with the member or the refusal', async () => {
    const who = await stack.member('audited', {});
    await signIn(stack, who, '10.9.3.1');
    const refused = await post(stack, '/portal/login', { username: who.username, key: 'wrong' }, '10.9.3.2');
    expect(refused.status).toBe(401);
    const audit = stack.gw.app.get(AuditService);
    await audit.flush(10_000);
    const rows = await stack.gw.app
      .get(AuditQueryService)
      .find({ username: who.username, action: 'portal.signin', limit: 10 });
    expect(rows.map((r) => [r.outcome, r.memberId, r.reason, r.httpStatus, r.clientIp]).sort()).toEqual(
      [
        ['allowed', who.id, null, 303, '10.9.3.1'],
        ['denied', null, 'bad_credentials', 401, '10.9.3.2'],
      ].sort(),
    );
    // The member sees their own portal sign-in in their activity.
    const html = await (await page(stack, '/portal/activity', await signIn(stack, who, '10.9.3.1'))).text();
    expect(html).toContain('sign-in (portal)');
  });

  it('limits guessing per address and per (username, address) without locking the member out elsewhere', async () => {
    const attacker = '10.66.0.1';
    for (let i = 0; i < 3; i++) {
      const res = await post(
        stack,
        '/portal/login',
        { username: other.username, key: `wrong-${i}` },
        attacker,
      );
      expect(res.status).toBe(401);
      expect(await res.text()).toContain('do not match');
    }
    const limited = await post(
      stack,
      '/portal/login',
      { username: other.username, key: other.key },
      attacker,
    );
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    // The member, from their own address, signs in.
    await signIn(stack, other, '10.77.0.1');
    // An unknown username reads the same as a wrong key.
    const unknown = await post(stack, '/portal/login', { username: 'nobody-here', key: 'x' }, '10.88.0.1');
    expect(unknown.status).toBe(401);
    expect(await unknown.text()).toContain('do not match');
  });

  it('limits one address guessing across many usernames, and the member still signs in from their own', async () => {
    const sprayer = '10.66.0.2';
    for (let i = 0; i < 4; i++) {
      const res = await post(stack, '/portal/login', { username: `guess-${i}`, key: 'x' }, sprayer);
      expect(res.status).toBe(401);
    }
    // The address's budget is spent: even the member's right key is refused from there.
    const limited = await post(
      stack,
      '/portal/login',
      { username: narrow.username, key: narrow.key },
      sprayer,
    );
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    await signIn(stack, narrow, '10.77.0.2');
  });
});
