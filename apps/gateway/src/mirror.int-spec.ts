import { createHash } from 'node:crypto';
import { AuditQueryService, AuditService } from '@gatehouse/audit';
import { AccessKeyHasher, AccessKeyService } from '@gatehouse/members';
import {
  createTestGateway,
  StackMember,
  startUpstreamGatewayStack,
  TestGateway,
  UpstreamGatewayStack,
} from '@gatehouse/testing/gateway';
import { ManualClock } from '@gatehouse/observability';
import { MEMBER_TAG_KEY_PURPOSE, memberTagOf } from '@gatehouse/upstream';
import { pushArtifact, SeededDownloads, seedDownloads, seedImage } from '@gatehouse/testing/upstream';
import { ConsoleSessionStore } from './console/console-session.store';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/**
 * A customer-site mirror: gateway B (UPSTREAM_KIND=gatehouse) whose upstream is gateway A, whose
 * upstream is the Forgejo front. B's service credentials are a member's username and access key
 * on A; B's members download through B → A with their own keys and B's rules.
 */
describe('a gateway in front of a gateway (UPSTREAM_KIND=gatehouse)', () => {
  let stack: UpstreamGatewayStack;
  let seeded: SeededDownloads;
  let service: StackMember;
  let b: TestGateway;
  let bob: StackMember;

  const bEnv = (key: string) => ({
    FORGEJO_BASE_URL: stack.gw.url,
    FORGEJO_API_USERNAME: service.username,
    FORGEJO_API_TOKEN: key,
    UPSTREAM_KIND: 'gatehouse',
    UPSTREAM_RETRIES: '0',
    UPSTREAM_SEND_MEMBER_TAG: 'true',
  });
  const get = (path: string, headers: Record<string, string> = {}) =>
    fetch(`${b.url}${path}`, { headers: { authorization: bob.basic, ...headers } });

  beforeAll(async () => {
    stack = await startUpstreamGatewayStack({ patLabel: 'mirror' });
    stack.front.setTokenScopes(stack.pat, ['read:package', 'read:repository']);
    seeded = seedDownloads(stack.front);
    for (const v of ['1.4.1', '1.4.2'])
      stack.front.addPackageFile('acme/cli', v, 'cli.tar.gz', Buffer.from(v));
    // A lets B's service member see the 1.x releases only.
    service = await stack.member('site-b', {
      'releases:acme/tool': ['semver:^1.0.0'],
      'packages:acme/cli': ['1.4.*'],
      'acme/app': ['v1.*'],
    });
    b = await createTestGateway({ env: bEnv(service.key) });
    // B's own member is entitled to every release on B: A's rules still bound what B serves.
    bob = await stack.member(
      'bob',
      {
        'releases:acme/tool': ['*'],
        'packages:acme/cli': ['*'],
        'acme/app': ['*'],
        'acme/tool': ['*'],
        'releases:acme/gadget': ['*'],
        'releases:acme/widget': ['*'],
        'releases:acme/gizmo': ['*'],
      },
      b,
    );
  });
  afterAll(async () => {
    await b?.close();
    await stack?.stop();
  });

  it("pulls an image through B → A; B's tag list is what A lets B's service member see", async () => {
    const token = await stack.token(bob, ['repository:acme/app:pull'], b);
    const v2 = (path: string) =>
      fetch(`${b.url}/v2/acme/app/${path}`, {
        headers: {
          authorization: `Bearer ${token}`,
          accept: 'application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json',
        },
      });
    const tags = (await (await v2('tags/list')).json()) as { tags: string[] };
    expect(tags.tags.sort()).toEqual(['v1.0.0', 'v1.1.0']);
    const manifest = await v2('manifests/v1.0.0');
    expect(manifest.status).toBe(200);
    expect(manifest.headers.get('docker-content-digest')).toBe(stack.seed.images['acme/app:v1.0.0'].digest);
    expect((await v2('manifests/v2.0.0-rc.1')).status).toBe(404);
  });

  it("serves an entitled image's signature and its referrers through B → A", async () => {
    const v100 = seedImage(stack.seed, 'acme/app', 'v1.0.0');
    const sigTag = `sha256-${v100.digest.slice('sha256:'.length)}.sig`;
    const sig = await pushArtifact(stack.registry.url, 'acme/app', {
      subject: v100,
      tag: sigTag,
      configMediaType: 'application/vnd.dev.cosign.artifact.sig.v1+json',
      layerMediaType: 'application/vnd.dev.cosign.simplesigning.v1+json',
      payload: JSON.stringify({ critical: { image: { 'docker-manifest-digest': v100.digest } } }),
    });
    const token = await stack.token(bob, ['repository:acme/app:pull'], b);
    const headers = { authorization: `Bearer ${token}`, accept: sig.mediaType };
    const manifest = await fetch(`${b.url}/v2/acme/app/manifests/${sigTag}`, { headers });
    expect(manifest.status).toBe(200);
    expect(manifest.headers.get('docker-content-digest')).toBe(sig.digest);
    const referrers = await fetch(`${b.url}/v2/acme/app/referrers/${v100.digest}`, { headers });
    expect(referrers.status).toBe(200);
    const index = (await referrers.json()) as { manifests: Array<{ digest: string }> };
    expect(index.manifests.map((m) => m.digest)).toContain(sig.digest);
  });

  it("lists in B's catalog only the repositories A lets B's service member see", async () => {
    const token = await stack.token(bob, ['registry:catalog:*'], b);
    const res = await fetch(`${b.url}/v2/_catalog`, { headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(200);
    // Bob is entitled to acme/app and acme/tool on B; A grants B's service member acme/app only.
    expect(((await res.json()) as { repositories: string[] }).repositories).toEqual(['acme/app']);
  });

  it("lists only the releases both B's rules and A's rules for B's service member admit", async () => {
    const res = await get('/downloads/releases/acme/tool');
    expect(res.status).toBe(200);
    const body = (await res.json()) as { releases: Array<{ tag: string }> };
    expect(body.releases.map((r) => r.tag).sort()).toEqual(['v1.0.0', 'v1.2.0']);
    expect((await get('/downloads/releases/acme/tool/v2.0.0/tool-linux-amd64')).status).toBe(404);
  });

  it("B's rule preview, tag list and release list for a glob A partly allows show only A's share", async () => {
    const carol = await stack.member('carol', { 'acme/app': ['v*'], 'releases:acme/tool': ['v*'] }, b);
    const session = await b.app
      .get(ConsoleSessionStore)
      .create({ issuer: 'https://idp.example', subject: 'admin-1', name: 'Ada', role: 'admin' });
    const q = new URLSearchParams({ member: carol.username, repository: 'acme/app', tags: 'v*' });
    const page = await fetch(`${b.url}/console/grant?${q}`, {
      headers: { cookie: `gatehouse_console=${session}` },
    });
    expect(page.status).toBe(200);
    const html = await page.text();
    // A lets B's service member see v1.* (and latest is no v* tag): v2.0.0-rc.1 is not offered.
    expect(html).toMatch(/2 of \d+ upstream tags admitted now/);
    expect(html).toContain('<code>v1.0.0</code>');
    expect(html).toContain('<code>v1.1.0</code>');
    expect(html).not.toContain('v2.0.0-rc.1');

    const token = await stack.token(carol, ['repository:acme/app:pull'], b);
    const tags = await fetch(`${b.url}/v2/acme/app/tags/list`, {
      headers: { authorization: `Bearer ${token}` },
    });
    const listed = ((await tags.json()) as { tags: string[] }).tags.filter((t) => t.startsWith('v'));
    expect(listed.sort()).toEqual(['v1.0.0', 'v1.1.0']);
    expect(
      (
        await fetch(`${b.url}/v2/acme/app/manifests/v2.0.0-rc.1`, {
          headers: { authorization: `Bearer ${token}` },
        })
      ).status,
    ).toBe(404);

    const releases = await fetch(`${b.url}/downloads/releases/acme/tool`, {
      headers: { authorization: carol.basic },
    });
    const body = (await releases.json()) as { releases: Array<{ tag: string }> };
    expect(body.releases.map((r) => r.tag).sort()).toEqual(['v1.0.0', 'v1.2.0']);
  });

  it('downloads an asset through B → A byte for byte, and resumes it with a range', async () => {
    const want = seeded.releases['v1.2.0']['tool-linux-amd64'];
    const whole = await get('/downloads/releases/acme/tool/v1.2.0/tool-linux-amd64');
    expect(whole.status).toBe(200);
    expect(sha(Buffer.from(await whole.arrayBuffer()))).toBe(sha(want));

    const from = 1_000_000;
    const rest = await get('/downloads/releases/acme/tool/v1.2.0/tool-linux-amd64', {
      range: `bytes=${from}-`,
    });
    expect(rest.status).toBe(206);
    expect(rest.headers.get('content-range')).toBe(`bytes ${from}-${want.length - 1}/${want.length}`);
    expect(sha(Buffer.from(await rest.arrayBuffer()))).toBe(sha(want.subarray(from)));
  });

  it("lists and downloads generic package versions both B's and A's rules admit, through A's package listing", async () => {
    const res = await get('/downloads/packages/acme/cli');
    expect(res.status).toBe(200);
    const body = (await res.json()) as {
      versions: Array<{ version: string; files: Array<{ sha256: string }> }>;
    };
    const want = seeded.packages['1.4.0']['cli.tar.gz'];
    expect(body.versions.map((v) => v.version)).toEqual(['1.4.2', '1.4.1', '1.4.0']);
    expect(body.versions[2].files.map((f) => f.sha256)).toEqual([sha(want)]);
    const file = await get('/downloads/packages/acme/cli/1.4.0/cli.tar.gz');
    expect(file.status).toBe(200);
    expect(sha(Buffer.from(await file.arrayBuffer()))).toBe(sha(want));
    expect((await get('/downloads/packages/acme/cli/2.0.0/cli.tar.gz')).status).toBe(404);
    // B asked A for the versions (one listing), then for each listed version's files (one each).
    await stack.gw.app.get(AuditService).flush();
    const asked = await stack.gw.app
      .get(AuditQueryService)
      .find({ username: service.username, action: 'download.list' });
    const listing = res.headers.get('x-request-id');
    expect(asked.filter((r) => r.clientRequestId === listing)).toHaveLength(4);
  });

  it("lists and downloads a generic package through B → A (A's listing, its file route, resume)", async () => {
    const want = seeded.packages['1.4.0']['cli.tar.gz'];
    const listing = await get('/downloads/packages/acme/cli/1.4.0');
    expect(listing.status).toBe(200);
    const body = (await listing.json()) as { files: Array<{ name: string; size: number; sha256: string }> };
    expect(body.files).toEqual([
      expect.objectContaining({ name: 'cli.tar.gz', size: want.length, sha256: sha(want) }),
    ]);
    // Bob may have 2.0.0 on B; A does not let B's service member see it: the same 404 as unknown.
    expect((await get('/downloads/packages/acme/cli/2.0.0')).status).toBe(404);
    expect((await get('/downloads/packages/acme/cli/2.0.0/cli.tar.gz')).status).toBe(404);

    const from = 123_456;
    const rest = await get('/downloads/packages/acme/cli/1.4.0/cli.tar.gz', { range: `bytes=${from}-` });
    expect(rest.status).toBe(206);
    expect(rest.headers.get('content-range')).toBe(`bytes ${from}-${want.length - 1}/${want.length}`);
    expect(sha(Buffer.from(await rest.arrayBuffer()))).toBe(sha(want.subarray(from)));
    const whole = await get('/downloads/packages/acme/cli/1.4.0/cli.tar.gz');
    expect(whole.status).toBe(200);
    expect(whole.headers.get('etag')).toBe(`"${sha(want)}"`);
    expect(sha(Buffer.from(await whole.arrayBuffer()))).toBe(sha(want));
  });

  it("B's release and package rule previews show only what A lists B's service member", async () => {
    const carol = await stack.member('carol', {}, b);
    const session = await b.app
      .get(ConsoleSessionStore)
      .create({ issuer: 'https://idp.example', subject: 'admin-1', name: 'Ada', role: 'admin' });
    // A lists B's service member the ^1.0.0 releases and the 1.4.* versions only.
    const preview = async (repository: string, tags: string) => {
      const q = new URLSearchParams({ member: carol.username, repository, tags });
      const res = await fetch(`${b.url}/console/grant?${q}`, {
        headers: { cookie: `gatehouse_console=${session}` },
      });
      expect(res.status).toBe(200);
      return res.text();
    };
    const releasePreview = await preview('releases:acme/tool', 'v*');
    expect(releasePreview).toContain('2 of 2 published releases admitted now');
    expect(releasePreview).toContain('<code>v1.2.0</code>');
    expect(releasePreview).not.toContain('v2.0.0');
    const packagePreview = await preview('packages:acme/cli', '*');
    expect(packagePreview).toContain('3 of 3 published versions admitted now');
    expect(packagePreview).toContain('<code>1.4.2</code>');
    expect(packagePreview).not.toContain('2.0.0');
  });

  it("passes B's request id upstream: A's audit row for B's request carries it as client_request_id", async () => {
    const res = await get('/downloads/releases/acme/tool/v1.0.0/tool-linux-amd64');
    expect(res.status).toBe(200);
    await res.arrayBuffer();
    const seenOnB = res.headers.get('x-request-id');
    expect(seenOnB).toBeTruthy();
    await stack.gw.app.get(AuditService).flush();
    // Support on A searches by the id B's member quoted (`gatehouse audit --client-request-id`).
    const joined = await stack.gw.app.get(AuditQueryService).find({ clientRequestId: seenOnB! });
    expect(joined).toHaveLength(1);
    expect(joined[0]).toMatchObject({
      username: service.username,
      action: 'download',
      reference: 'v1.0.0/tool-linux-amd64',
    });
    // And quotes A's own request id back to B.
    expect(joined[0].requestId).not.toBe(seenOnB);
  });

  it("sends A an opaque tag of B's member (UPSTREAM_SEND_MEMBER_TAG), recorded only with accepted credentials", async () => {
    const res = await get('/downloads/releases/acme/tool/v1.0.0/checksums.txt');
    expect(res.status).toBe(200);
    await res.arrayBuffer();
    const tag = memberTagOf(b.app.get(AccessKeyHasher).derivedKey(MEMBER_TAG_KEY_PURPOSE), bob.username);
    expect(tag).toMatch(/^m1-[0-9a-f]{32}$/);
    // A forged tag on A: without credentials, with a wrong key, and out of the allowed shape.
    const forged = 'm1-' + 'f'.repeat(32);
    const wrongKey = 'Basic ' + Buffer.from(`${service.username}:nope`).toString('base64');
    for (const authorization of [undefined, wrongKey])
      await fetch(`${stack.gw.url}/downloads/releases/acme/tool`, {
        headers: { 'x-gatehouse-member-tag': forged, ...(authorization ? { authorization } : {}) },
      });
    const bad = await fetch(`${stack.gw.url}/downloads/releases/acme/tool`, {
      headers: { 'x-gatehouse-member-tag': 'a b<script>', authorization: service.basic },
    });
    expect(bad.status).toBe(200);
    const badId = bad.headers.get('x-request-id');

    await stack.gw.app.get(AuditService).flush();
    const query = stack.gw.app.get(AuditQueryService);
    const tagged = await query.find({ memberTag: tag });
    // Every request of bob's that reached A carries the tag, and none names bob.
    expect(new Set(tagged.map((r) => r.username))).toEqual(new Set([service.username]));
    expect(tagged.find((r) => r.clientRequestId === res.headers.get('x-request-id'))).toMatchObject({
      reference: 'v1.0.0/checksums.txt',
      outcome: 'allowed',
    });
    expect(JSON.stringify(tagged)).not.toContain(bob.username);
    expect(await query.find({ memberTag: forged })).toEqual([]);
    const [unsafe] = await query.find({ requestId: badId! });
    expect(unsafe.clientMemberTag).toBeNull();
  });

  it('detects a Gatehouse upstream with UPSTREAM_KIND unset: logged once, shown on /readyz, downloads through A', async () => {
    for (const path of ['/v2/', '/downloads/releases/acme/tool'])
      expect((await fetch(`${stack.gw.url}${path}`)).headers.get('gatehouse-api-version')).toBe('1');
    // eslint-disable-next-line @typescript-eslint/no-unused-vars
    const { UPSTREAM_KIND, UPSTREAM_SEND_MEMBER_TAG, ...detecting } = bEnv(service.key);
    const c = await createTestGateway({ env: detecting });
    try {
      const dave = await stack.member('dave', { 'releases:acme/tool': ['*'] }, c);
      const res = await fetch(`${c.url}/downloads/releases/acme/tool`, {
        headers: { authorization: dave.basic },
      });
      expect(res.status).toBe(200);
      const body = (await res.json()) as { releases: Array<{ tag: string }> };
      expect(body.releases.map((r) => r.tag).sort()).toEqual(['v1.0.0', 'v1.2.0']);
      // Without UPSTREAM_SEND_MEMBER_TAG no tag reaches A.
      await stack.gw.app.get(AuditService).flush();
      const rows = await stack.gw.app
        .get(AuditQueryService)
        .find({ username: service.username, action: 'download.list' });
      const fromC = rows.filter((r) => r.clientRequestId === res.headers.get('x-request-id'));
      expect(fromC).toHaveLength(1);
      expect(fromC[0].clientMemberTag).toBeNull();

      type Ready = { details: Record<string, { status: string; kind?: string; kindSource?: string }> };
      const ready = (await (await fetch(`${c.url}/readyz`)).json()) as Ready;
      expect(ready.details.upstream).toMatchObject({
        status: 'up',
        kind: 'gatehouse',
        kindSource: 'detected',
      });
      const detected = c.logs.filter((l) => l.upstreamKind !== undefined);
      expect(detected).toHaveLength(1);
      expect(detected[0]).toMatchObject({ upstreamKind: 'gatehouse' });
      // A itself, in front of the Forgejo front, detects Forgejo; B configured says so.
      const onA = (await (await fetch(`${stack.gw.url}/readyz`)).json()) as Ready;
      expect(onA.details.upstream).toMatchObject({ kind: 'forgejo', kindSource: 'detected' });
      const onB = (await (await fetch(`${b.url}/readyz`)).json()) as Ready;
      expect(onB.details.upstream).toMatchObject({ kind: 'gatehouse', kindSource: 'configured' });
    } finally {
      await c.close();
    }
  });

  it("names the upstream access key and `gatehouse explain` when A refuses B's key", async () => {
    const keys = stack.gw.app.get(AccessKeyService);
    const spare = await keys.create(service.username, { name: 'spare' });
    const [current] = (await keys.list(service.username)).filter((k) => k.id !== spare.accessKey.id);
    await keys.revoke(current.id);
    const since = new Date();
    const refused = await get('/downloads/releases/acme/gadget');
    expect(refused.status).toBeGreaterThanOrEqual(500);
    // B backs off: further requests within the window fail at once without reaching A.
    for (const repo of ['gadget', 'widget', 'gizmo', 'tool']) {
      expect((await get(`/downloads/releases/acme/${repo}/v9.0.0/x`)).status).toBeGreaterThanOrEqual(400);
    }
    await stack.gw.app.get(AuditService).flush();
    const onA = await stack.gw.app.get(AuditQueryService).find({ username: service.username, since });
    expect(onA.filter((e) => e.outcome !== 'allowed')).toHaveLength(1);
    const logs = b.logs.map((l) => JSON.stringify(l));
    const line = logs.find((l) => l.includes('The upstream Gatehouse refused'));
    // A command A's operator can run as it stands.
    expect(line).toContain(`\`gatehouse explain ${service.username} releases:acme/gadget@<tag>\``);
    expect(logs.filter((l) => l.includes('credentials_backoff'))).toHaveLength(1);
    expect(logs.join('\n')).not.toContain('read:package');

    // B restarted with a new valid key downloads again at once.
    await b.close();
    b = await createTestGateway({ env: bEnv(spare.key) });
    bob = await stack.member('bob', { 'releases:acme/tool': ['*'] }, b);
    const res = await get('/downloads/releases/acme/tool/v1.0.0/tool-linux-amd64');
    expect(res.status).toBe(200);
    await res.arrayBuffer();
  });

  it("a key refused for A's whole failed-login window does not lock B out: a new key works at once after restart", async () => {
    // A counts failed logins per (username, address): 10 in 300 s by default, then 429 even to a good key.
    const site = await stack.member('site-c', { 'releases:acme/tool': ['semver:^1.0.0'] });
    const clock = new ManualClock(Date.now());
    const env = { ...bEnv(site.key), FORGEJO_API_USERNAME: site.username };
    let c: TestGateway | undefined = await createTestGateway({ env, clock });
    try {
      const erin = await stack.member('erin', { 'releases:acme/tool': ['*'] }, c);
      const keys = stack.gw.app.get(AccessKeyService);
      const spare = await keys.create(site.username, { name: 'spare' });
      const [current] = (await keys.list(site.username)).filter((k) => k.id !== spare.accessKey.id);
      await keys.revoke(current.id);
      const since = new Date();
      let ready = '';
      // Five minutes on B's clock of a member's requests and readiness probes, every 10 s.
      for (let s = 0; s < 300; s += 10) {
        const listing = await fetch(`${c.url}/downloads/releases/acme/tool`, {
          headers: { authorization: erin.basic },
        });
        expect(listing.status).toBeGreaterThanOrEqual(500);
        await listing.arrayBuffer();
        ready = await (await fetch(`${c.url}/readyz`)).text();
        clock.advance(10_000);
      }
      // The probes say why, in an upstream Gatehouse's terms, even while held back.
      const rows = (JSON.parse(ready) as { details: Record<string, { status: string; message?: string }> })
        .details;
      for (const row of [rows.upstream, rows.releases]) {
        expect(row.status).toBe('down');
        expect(row.message).toContain("The upstream Gatehouse refused this gateway's access key");
      }
      expect(ready).toContain('Backing off');
      expect(ready).not.toMatch(/read:package|rate limit/);
      await stack.gw.app.get(AuditService).flush();
      const onA = await stack.gw.app.get(AuditQueryService).find({ username: site.username, since });
      // 20, 40, 80 s, then every 120 s: five attempts in A's window, half its budget.
      expect(onA.filter((e) => e.outcome !== 'allowed').length).toBeLessThanOrEqual(5);
      expect(c.logs.some((l) => l.reason === 'credentials_backoff')).toBe(true);
      await c.close();
      c = undefined;

      c = await createTestGateway({ env: { ...env, FORGEJO_API_TOKEN: spare.key } });
      const frank = await stack.member('frank', { 'releases:acme/tool': ['*'] }, c);
      const started = Date.now();
      const res = await fetch(`${c.url}/downloads/releases/acme/tool/v1.0.0/tool-linux-amd64`, {
        headers: { authorization: frank.basic },
      });
      expect(res.status).toBe(200);
      await res.arrayBuffer();
      expect(Date.now() - started).toBeLessThan(5_000);
    } finally {
      await c?.close();
    }
  });
});
