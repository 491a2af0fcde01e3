import { execFile } from 'node:child_process';
import { appendFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Page } from 'playwright-core';
import { parse as parseYaml } from 'yaml';
import { AuditQueryService, AuditService } from '@gatehouse/audit';
import { EntitlementService } from '@gatehouse/entitlements';
import { startDockerEngine } from '@gatehouse/testing/engine';
import { startUpstreamGatewayStack, StackMember, UpstreamGatewayStack } from '@gatehouse/testing/gateway';
import {
  createContainerToolsSandbox,
  pushArtifact,
  runCommand,
  seedDownloads,
  SeededDownloads,
  sigstoreTools,
} from '@gatehouse/testing/upstream';
import { launchChromium, seriousViolations } from '../console/console-browser';

const SCREENSHOTS = process.env.GATEHOUSE_PORTAL_SCREENSHOTS;
const SIGSTORE_TOOLS = join(__dirname, '../../../../scripts/sigstore-tools.sh');

let stack: UpstreamGatewayStack;
let browser: Awaited<ReturnType<typeof launchChromium>>;
let page: Page;
let member: StackMember;
let other: StackMember;
let seeded: SeededDownloads;
let grantEnds: Date;

async function shot(name: string): Promise<void> {
  if (SCREENSHOTS) await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });
}

async function signIn(who: StackMember, key = who.key): Promise<void> {
  await page.goto(`${stack.gw.url}/portal/`);
  expect(new URL(page.url()).pathname).toBe('/portal/login');
  await page.getByLabel('Username').fill(who.username);
  await page.getByLabel('Access key').fill(key);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

describe('the customer portal in Chromium', () => {
  beforeAll(async () => {
    stack = await startUpstreamGatewayStack({
      gatewayEnv: { TRUST_PROXY: 'loopback', AUTH_FAILED_LOGINS_PER_USERNAME: '3' },
    });
    // A narrow grant, expiring within the warning window; a case-variant rule admits no more.
    stack.front.setTokenScopes(stack.pat, ['read:package', 'read:repository']);
    seeded = seedDownloads(stack.front);
    // A cosign signature of v1.0.0, at its tag (cosign's tag scheme).
    const v100 = stack.seed.images['acme/app:v1.0.0'];
    await pushArtifact(stack.registry.url, 'acme/app', {
      subject: { digest: v100.digest, size: v100.size, mediaType: v100.mediaType },
      tag: `sha256-${v100.digest.slice('sha256:'.length)}.sig`,
      configMediaType: 'application/vnd.dev.cosign.artifact.sig.v1+json',
      layerMediaType: 'application/vnd.dev.cosign.simplesigning.v1+json',
      payload: JSON.stringify({ critical: { image: { 'docker-manifest-digest': v100.digest } } }),
    });
    grantEnds = new Date(Date.now() + 6 * 86_400_000);
    member = await stack.member('portal-customer', {
      'releases:acme/tool': ['semver:^1.0.0'],
      'packages:acme/cli': ['1.4.*'],
    });
    await stack.gw.app
      .get(EntitlementService)
      .grant(member.username, 'acme/app', ['v1.0.*'], { expiresAt: grantEnds });
    other = await stack.member('portal-other', { 'acme/tool': ['*'] });
    browser = await launchChromium();
    page = await browser.context.newPage();
  }, 180_000);
  afterAll(async () => {
    await browser?.close();
    await stack?.stop();
  });

  it('shows the member the tags the registry admits, the expiry warning and no one else', async () => {
    await signIn(member, 'not-the-key');
    await expect(page.getByRole('alert').textContent()).resolves.toContain('do not match');
    await shot('portal-signin-refused');
    await signIn(member);
    expect(new URL(page.url()).pathname).toBe('/portal/overview');
    const shown = await page.locator('article.image ul.tags > li > code:first-child').allTextContents();
    const token = await stack.token(member, ['repository:acme/app:pull']);
    const listed = await fetch(`${stack.gw.url}/v2/acme/app/tags/list`, {
      headers: { authorization: `Bearer ${token}` },
    });
    // The registry's list, less the signature's artifact tag (shown under v1.0.0 instead).
    const tags = ((await listed.json()) as { tags: string[] }).tags;
    expect(tags.filter((t) => t.endsWith('.sig'))).toHaveLength(1);
    expect(shown).toEqual(tags.filter((t) => !t.startsWith('sha256-')));
    expect(shown).toEqual(['v1.0.0']);
    for (const refused of ['v1.1.0', 'latest', 'V1.0.0']) expect(shown).not.toContain(refused);
    // The tag's platforms with sizes, and its signature with the line to verify it.
    const image = stack.seed.images['acme/app:v1.0.0'];
    await expect(page.locator('ul.tags > li .platform code').allTextContents()).resolves.toEqual(
      image.manifests.map((m) =>
        [m.platform.os, m.platform.architecture, m.platform.variant].filter(Boolean).join('/'),
      ),
    );
    await expect(page.locator('ul.artifacts .kind').allTextContents()).resolves.toEqual(['signature']);
    await expect(page.locator('pre[id$="-cosign-0"]').textContent()).resolves.toBe(
      `cosign verify --key cosign.pub ${stack.gw.host}/acme/app@${image.digest}`,
    );
    await expect(page.locator('#expiring').textContent()).resolves.toBe('Expiring soon');
    await expect(page.locator('section.warning').textContent()).resolves.toContain('acme/app');
    expect(await seriousViolations(page)).toEqual([]);
    await shot('portal-overview');
    // Another member's name in the URL changes nothing.
    await page.goto(`${stack.gw.url}/portal/overview?member=${other.username}`);
    const text = await page.locator('main').textContent();
    expect(text).toContain(member.username);
    expect(text).not.toContain(other.username);
    expect(text).not.toContain('acme/tool');
    await page.getByRole('link', { name: 'What I may download' }).click();
    await expect(page.locator('article.release h3').allTextContents()).resolves.toEqual(['v1.2.0', 'v1.0.0']);
    await expect(page.locator('article.package h3').allTextContents()).resolves.toEqual(['1.4.0']);
    await expect(page.locator('article.package').textContent()).resolves.toContain('wget --user');
    expect(await seriousViolations(page)).toEqual([]);
    await shot('portal-downloads');
    await page.getByRole('link', { name: 'My activity' }).click();
    await expect(page.locator('table.activity').textContent()).resolves.toContain('list releases');
    expect(await seriousViolations(page)).toEqual([]);
    await shot('portal-activity');
    await page.getByRole('button', { name: 'Sign out' }).click();
    expect(new URL(page.url()).pathname).toBe('/portal/login');
    await page.goto(`${stack.gw.url}/portal/overview`);
    expect(new URL(page.url()).pathname).toBe('/portal/login');
  }, 120_000);

  it('prints commands that run as printed, and lists exactly the tags docker pull admits', async () => {
    await signIn(member);
    const printed = async (id: string) => (await page.locator(`pre[id$="${id}"]`).textContent())!;
    const [login, dockerPull, podmanPull, skopeo, secretYaml] = await Promise.all(
      ['login-command', '-docker', '-podman', '-skopeo', 'pull-secret'].map(printed),
    );
    const shown = await page.locator('article.image ul.tags > li > code:first-child').allTextContents();
    expect(shown).toEqual(['v1.0.0']);
    const ref = (tag: string) => `${stack.gw.host}/acme/app:${tag}`;
    expect(dockerPull).toBe(`docker pull ${ref('v1.0.0')}`);
    // Every tag the vendor published (signatures aside), and each in capitals: docker pull tries them all.
    const published = (
      (await (await fetch(`${stack.registry.url}/v2/acme/app/tags/list`)).json()) as { tags: string[] }
    ).tags.filter((t) => !t.startsWith('sha256-'));
    expect(published).toEqual(expect.arrayContaining(['v1.0.0', 'v1.1.0', 'latest', 'v2.0.0-rc.1']));
    const engine = await startDockerEngine({ insecureRegistries: [stack.gw.host] });
    const tools = await createContainerToolsSandbox();
    try {
      // The Debian engine's own client first on PATH; `docker login` writes $HOME/.docker, which
      // podman also reads when no auth file is named; the test gateway is plain http.
      const { REGISTRY_AUTH_FILE: _named, ...toolsEnv } = tools.env;
      const env: NodeJS.ProcessEnv = {
        ...toolsEnv,
        ...engine.env,
        DOCKER_CONFIG: join(tools.env.HOME!, '.docker'),
      };
      env.PATH = `/usr/bin:${env.PATH}`;
      await appendFile(
        join(tools.dir, 'registries.conf'),
        `[[registry]]\nlocation = "${stack.gw.host}"\ninsecure = true\n`,
      );
      const sh = (line: string, extra: NodeJS.ProcessEnv = {}) =>
        runCommand('bash', ['-c', line], { env: { ...env, ...extra } });
      const loggedIn = await sh(`printf %s "$GATEHOUSE_KEY" | ${login}`, { GATEHOUSE_KEY: member.key });
      expect({ code: loggedIn.code, stderr: loggedIn.stderr }).toMatchObject({ code: 0 });
      for (const line of [dockerPull, podmanPull]) {
        const ran = await sh(line);
        expect({ line, code: ran.code, stderr: ran.stderr }).toMatchObject({ line, code: 0 });
      }
      // skopeo takes plain http from its flag only, not from registries.conf.
      const inspected = await sh(skopeo.replace('skopeo inspect', 'skopeo inspect --tls-verify=false'), {
        GATEHOUSE_KEY: member.key,
      });
      expect({ code: inspected.code, stderr: inspected.stderr }).toMatchObject({ code: 0 });
      expect(JSON.parse(inspected.stdout)).toMatchObject({ Name: `${stack.gw.host}/acme/app` });

      // The imagePullSecret with the key where its placeholder is: a registry config the engine pulls
      // with (username and password entries, read by the kubelet and the docker client alike).
      const secret = parseYaml(secretYaml) as {
        kind: string;
        type: string;
        stringData: Record<string, string>;
      };
      expect(secret).toMatchObject({ kind: 'Secret', type: 'kubernetes.io/dockerconfigjson' });
      const fromSecret = join(tools.dir, 'from-secret');
      await mkdir(fromSecret);
      await writeFile(
        join(fromSecret, 'config.json'),
        secret.stringData['.dockerconfigjson'].replace('<YOUR-ACCESS-KEY>', member.key),
      );
      const pulledWithSecret = await engine.docker(['pull', ref('v1.0.0')], {
        env: { DOCKER_CONFIG: fromSecret },
      });
      expect({ code: pulledWithSecret.code, stderr: pulledWithSecret.stderr }).toMatchObject({ code: 0 });

      const admitted: string[] = [];
      for (const tag of published.flatMap((t) => [t, t.toUpperCase()])) {
        const pulled = await engine.docker(['pull', ref(tag)], { env: { DOCKER_CONFIG: env.DOCKER_CONFIG } });
        if (pulled.code === 0) admitted.push(tag);
        // A refusal reads as an unknown manifest, not as a fault of the client or the upstream.
        else expect(pulled.stderr).toMatch(/manifest unknown/);
      }
      // Pulled under either spelling, one tag, as the portal lists it; its refused neighbours in neither.
      expect(admitted.sort()).toEqual(['V1.0.0', 'v1.0.0']);
      expect([...new Set(admitted.map((t) => t.toLowerCase()))]).toEqual(shown);
    } finally {
      await tools.cleanup();
      await engine.stop();
    }
    await page.getByRole('button', { name: 'Sign out' }).click();
  }, 300_000);

  it('warns of the expiring grant on the page, and a pull carries the Warning that curl and skopeo 1.18 show', async () => {
    await signIn(member);
    const iso = grantEnds.toISOString().replace(/\.\d{3}Z$/, 'Z');
    await expect(page.locator('section.warning li').allTextContents()).resolves.toEqual([
      expect.stringMatching(/^Your access to acme\/app expires on .+ \(in 6 days\)\.$/),
    ]);
    const skopeo = (await page.locator('pre[id$="-skopeo"]').textContent())!;
    await page.getByRole('button', { name: 'Sign out' }).click();
    const warning = `your access to acme/app expires on ${iso}`;
    // curl: the header itself.
    const token = await stack.token(member, ['repository:acme/app:pull']);
    const { stdout } = await promisify(execFile)('curl', [
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
    expect(stdout.match(/^warning: .*$/gim)!.map((l) => l.trim())).toEqual([`warning: 299 - "${warning}"`]);
    // The printed skopeo line run by Debian trixie's skopeo 1.18 (containers/image logs each registry
    // warning), plus plain http for the test gateway (skopeo takes it from its flag only).
    const trixie = await sigstoreTools();
    expect(trixie.version).toBe('skopeo version 1.18.0');
    const tools = await createContainerToolsSandbox();
    try {
      const bin = join(tools.dir, 'bin');
      await mkdir(bin);
      await writeFile(join(bin, 'skopeo'), `#!/bin/sh\nexec bash '${SIGSTORE_TOOLS}' skopeo "$@"\n`, {
        mode: 0o755,
      });
      const line = skopeo.replace('skopeo inspect', 'skopeo inspect --tls-verify=false');
      const ran = await runCommand('bash', ['-c', line], {
        env: { ...tools.env, PATH: `${bin}:${tools.env.PATH}`, GATEHOUSE_KEY: member.key },
      });
      expect(ran.code === 0 ? 0 : ran.stderr).toBe(0);
      const shown = [
        ...ran.stderr.matchAll(/Warning from registry \(first encountered at [^)]*\): \\"(.*?)\\""/g),
      ];
      expect(shown.map((m) => m[1])).toEqual([warning]);
    } finally {
      await tools.cleanup();
    }
  }, 300_000);

  it('downloads a file on a click through its /downloads/ route, audited as the member', async () => {
    await signIn(member);
    await page.getByRole('link', { name: 'What I may download' }).click();
    const link = page.locator('article.release a[href$="/v1.0.0/tool-linux-amd64"]');
    const href = (await link.getAttribute('href'))!;
    expect(href).toBe(`${stack.gw.url}/downloads/releases/acme/tool/v1.0.0/tool-linux-amd64`);
    // The route asks for Basic credentials (the portal cookie is for /portal/ only): the member
    // answers the browser's prompt with their username and key.
    await browser.context.setHTTPCredentials({ username: member.username, password: member.key });
    try {
      const [download] = await Promise.all([page.waitForEvent('download'), link.click()]);
      expect(download.suggestedFilename()).toBe('tool-linux-amd64');
      expect(await readFile((await download.path())!)).toEqual(seeded.releases['v1.0.0']['tool-linux-amd64']);
    } finally {
      await browser.context.setHTTPCredentials(null);
    }
    await stack.gw.app.get(AuditService).flush(10_000);
    const rows = await stack.gw.app
      .get(AuditQueryService)
      .find({ username: member.username, action: 'download', limit: 10 });
    expect(rows.map((r) => [r.outcome, r.memberId, r.reference])).toContainEqual([
      'allowed',
      member.id,
      expect.stringContaining('v1.0.0/tool-linux-amd64'),
    ]);
    await page.getByRole('button', { name: 'Sign out' }).click();
  }, 120_000);

  it('limits guessing from one address without locking the member out from another', async () => {
    await page.setExtraHTTPHeaders({ 'x-forwarded-for': '10.66.0.1' });
    for (let i = 0; i < 3; i++) {
      await signIn(other, `guess-${i}`);
      await expect(page.getByRole('alert').textContent()).resolves.toContain('do not match');
    }
    await signIn(other);
    await expect(page.getByRole('alert').textContent()).resolves.toContain('Too many failed sign-ins');
    expect(new URL(page.url()).pathname).toBe('/portal/login');
    await page.setExtraHTTPHeaders({ 'x-forwarded-for': '10.77.0.1' });
    await signIn(other);
    expect(new URL(page.url()).pathname).toBe('/portal/overview');
    await expect(page.locator('main').textContent()).resolves.toContain('acme/tool');
  }, 60_000);
});
