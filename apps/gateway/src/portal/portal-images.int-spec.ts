import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { EntitlementService } from '@gatehouse/entitlements';
import { AccessKeyService } from '@gatehouse/members';
import { platformName } from '@gatehouse/pull-through';
import { startDockerEngine } from '@gatehouse/testing/engine';
import { startUpstreamGatewayStack, StackMember, UpstreamGatewayStack } from '@gatehouse/testing/gateway';
import {
  createContainerToolsSandbox,
  generateSigstoreKey,
  pushArtifact,
  pushManifest,
  seedDownloads,
  signInRegistry,
  sigstoreTools,
} from '@gatehouse/testing/upstream';
import { humanSize } from './portal-view';

const run = promisify(execFile);

const SIMPLE_SIGNING = 'application/vnd.dev.cosign.simplesigning.v1+json';
const DSSE = 'application/vnd.dsse.envelope.v1+json';
const SLSA = 'https://slsa.dev/provenance/v0.2';
const MANIFESTS = 'application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json';
const MANIFESTS_ALL = `${MANIFESTS}, application/vnd.docker.distribution.manifest.v2+json`;

const tagOf = (digest: string, suffix: string) => `sha256-${digest.slice('sha256:'.length)}${suffix}`;
const decode = (s: string) =>
  s.replace(/&#(\d+);/g, (_, n: string) => String.fromCharCode(Number(n))).replace(/&amp;/g, '&');
const iso = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, 'Z');

async function signIn(stack: UpstreamGatewayStack, who: StackMember): Promise<string> {
  const res = await fetch(`${stack.gw.url}/portal/login`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', 'sec-fetch-site': 'same-origin' },
    body: new URLSearchParams({ username: who.username, key: who.key }).toString(),
  });
  expect(res.status).toBe(303);
  return res.headers.get('set-cookie')!.split(';')[0];
}

/** The response head curl prints (`-D -`), header names lower-cased by the gateway. */
async function curlHead(args: string[]): Promise<string> {
  const { stdout } = await run('curl', ['-sS', '-o', '/dev/null', '-D', '-', ...args]);
  return stdout;
}

describe('the portal: platforms, signatures, and key expiry warnings', () => {
  let stack: UpstreamGatewayStack;
  let member: StackMember;

  beforeAll(async () => {
    stack = await startUpstreamGatewayStack({ gatewayEnv: { TRUST_PROXY: 'loopback' } });
    stack.front.setTokenScopes(stack.pat, ['read:package', 'read:repository']);
    seedDownloads(stack.front);
    const v100 = stack.seed.images['acme/app:v1.0.0'];
    const subject = { digest: v100.digest, size: v100.size, mediaType: v100.mediaType };
    // What cosign leaves beside a signed image: a signature, an attestation, an SBOM (tag scheme).
    const registry = stack.registry.url;
    await pushArtifact(registry, 'acme/app', {
      subject,
      tag: tagOf(v100.digest, '.sig'),
      configMediaType: 'application/vnd.dev.cosign.artifact.sig.v1+json',
      layerMediaType: SIMPLE_SIGNING,
      payload: JSON.stringify({ critical: { image: { 'docker-manifest-digest': v100.digest } } }),
      layerAnnotations: { 'dev.cosignproject.cosign/signature': 'MEUCIQ-test-signature' },
    });
    await pushArtifact(registry, 'acme/app', {
      subject,
      tag: tagOf(v100.digest, '.att'),
      layerMediaType: DSSE,
      payload: '{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[]}',
      layerAnnotations: { predicateType: SLSA },
    });
    await pushArtifact(registry, 'acme/app', {
      subject,
      tag: tagOf(v100.digest, '.sbom'),
      configMediaType: 'application/vnd.dev.cosign.artifact.sbom.v1+json',
      layerMediaType: 'text/spdx+json',
      payload: '{"spdxVersion":"SPDX-2.3"}',
    });
    member = await stack.member('images', { 'acme/app': ['v1.*'] });
  }, 180_000);
  afterAll(() => stack?.stop());

  it("shows each tag's digest, platforms and sizes, and its signatures with the cosign lines", async () => {
    const html = await (
      await fetch(`${stack.gw.url}/portal/overview`, {
        headers: { cookie: await signIn(stack, member) },
      })
    ).text();
    const part = (tag: string) => {
      const start = html.indexOf(`<li><code>${tag}</code>`);
      expect(start).toBeGreaterThan(0);
      const next = html
        .slice(start + 1)
        .search(/<li><code>v|<\/ul>\s*(<p class="more">[^]*?)?<pre id="image-[^"]*-docker"/);
      return html.slice(start, start + 1 + next);
    };
    for (const tag of ['v1.0.0', 'v1.1.0']) {
      const image = stack.seed.images[`acme/app:${tag}`];
      const shown = part(tag);
      expect(shown).toContain(`<code class="digest">${image.digest}</code>`);
      // Every platform of the image, with config + layers as the registry holds them.
      const platforms = [...shown.matchAll(/<span class="platform"><code>([^<]+)<\/code> ([^<]+)<\/span>/g)];
      expect(platforms.map((m) => [m[1], m[2]])).toEqual(
        image.manifests.map((m) => [
          platformName(m.platform),
          humanSize(m.config.size + m.layers.reduce((n, l) => n + l.size, 0)),
        ]),
      );
    }
    expect(stack.seed.images['acme/app:v1.0.0'].manifests.length).toBeGreaterThan(0);

    const signed = part('v1.0.0');
    const digest = stack.seed.images['acme/app:v1.0.0'].digest;
    const kinds = [...signed.matchAll(/<li><span class="kind">([^<]+)<\/span>/g)].map((m) => m[1]);
    expect(kinds.sort()).toEqual(['SBOM', 'attestation', 'signature']);
    const ref = `${stack.gw.host}/acme/app@${digest}`;
    const lines = [...signed.matchAll(/<pre id="[^"]+-cosign-\d+"><code>([^<]+)<\/code><\/pre>/g)].map((m) =>
      decode(m[1]),
    );
    expect(lines.sort()).toEqual(
      [
        `cosign verify --key cosign.pub ${ref}`,
        `cosign verify-attestation --key cosign.pub --type ${SLSA} ${ref}`,
        `cosign download sbom ${ref}`,
      ].sort(),
    );
    // The same referrers the registry's own referrers API lists for this member.
    const token = await stack.token(member, ['repository:acme/app:pull']);
    const referrers = (await (
      await fetch(`${stack.gw.url}/v2/acme/app/referrers/${digest}`, {
        headers: { authorization: `Bearer ${token}` },
      })
    ).json()) as { manifests: Array<{ digest: string }> };
    const listed = [...signed.matchAll(/<\/span> <code>(sha256:[a-f0-9]{64})<\/code>/g)].map((m) => m[1]);
    expect(listed.sort()).toEqual(referrers.manifests.map((m) => m.digest).sort());
    // An unsigned tag shows none; artifact tags are not offered as tags to pull.
    expect(part('v1.1.0')).not.toContain('class="artifacts"');
    expect(html).not.toContain('<li><code>sha256-');
  }, 120_000);

  it('resolves the ten newest tags of a grant and says how many more match', async () => {
    // Twelve more tags of acme/tool's one image, pushed as a vendor would.
    const registry = stack.registry.url;
    const original = (await (
      await fetch(`${registry}/v2/acme/tool/manifests/1.0.0`, { headers: { accept: MANIFESTS_ALL } })
    ).json()) as object;
    for (let i = 1; i <= 12; i++) await pushManifest(registry, 'acme/tool', `1.0.${i}`, original);
    const many = await stack.member('many', { 'acme/tool': ['*'] });
    const html = await (
      await fetch(`${stack.gw.url}/portal/overview`, {
        headers: { cookie: await signIn(stack, many) },
      })
    ).text();
    const tags = [...html.matchAll(/<li><code>(1\.0\.\d+)<\/code>/g)].map((m) => m[1]);
    expect(tags).toHaveLength(13);
    expect(tags.slice(0, 3)).toEqual(['1.0.12', '1.0.11', '1.0.10']);
    expect((html.match(/<code class="digest">/g) ?? []).length).toBe(10);
    expect(html).toContain('shown for the 10 newest tags;\n3 more match your grant.');
  }, 120_000);

  it('warns of an access key expiring soon on pulls and downloads, one Warning line per warning', async () => {
    const who = await stack.member('keyexp', { 'releases:acme/tool': ['v1.0.0'] });
    const grantEnds = new Date(Date.now() + 3 * 86_400_000);
    await stack.gw.app
      .get(EntitlementService)
      .grant(who.username, 'acme/app', ['v1.0.0'], { expiresAt: grantEnds });
    const keyEnds = new Date(Date.now() + 5 * 86_400_000);
    const created = await stack.gw.app.get(AccessKeyService).create(who.username, { expiresAt: keyEnds });
    const prefix = created.key.slice(0, 12);
    const expiring = {
      ...who,
      key: created.key,
      basic: 'Basic ' + Buffer.from(`${who.username}:${created.key}`).toString('base64'),
    };
    const manifest = `${stack.gw.url}/v2/acme/app/manifests/v1.0.0`;
    const pulled = await curlHead([
      '-H',
      `Authorization: Bearer ${await stack.token(expiring, ['repository:acme/app:pull'])}`,
      '-H',
      `Accept: ${MANIFESTS}`,
      manifest,
    ]);
    expect(pulled).toMatch(/^HTTP\/1\.1 200/);
    expect(pulled.match(/^warning: .*$/gim)!.map((l) => l.trim())).toEqual([
      `warning: 299 - "your access to acme/app expires on ${iso(grantEnds)}"`,
      `warning: 299 - "your access key ${prefix} expires on ${iso(keyEnds)}"`,
    ]);
    // A download with Basic credentials: the key's line alone (the release grant has no expiry).
    const file = `${stack.gw.url}/downloads/releases/acme/tool/v1.0.0/checksums.txt`;
    const downloaded = await curlHead(['-u', `${who.username}:${created.key}`, file]);
    expect(downloaded).toMatch(/^HTTP\/1\.1 200/);
    expect(downloaded.match(/^warning: .*$/gim)!.map((l) => l.trim())).toEqual([
      `warning: 299 - "your access key ${prefix} expires on ${iso(keyEnds)}"`,
    ]);
    // The member's other key has no expiry: no key warning on the same download.
    expect(await curlHead(['-u', `${who.username}:${who.key}`, file])).not.toMatch(/^warning:/im);
  }, 120_000);

  it('is printed by skopeo 1.18 (containers/image), one line per warning; older clients stay silent', async () => {
    const who = await stack.member('clients', {});
    const grantEnds = new Date(Date.now() + 3 * 86_400_000);
    await stack.gw.app
      .get(EntitlementService)
      .grant(who.username, 'acme/app', ['v1.0.0'], { expiresAt: grantEnds });
    const keyEnds = new Date(Date.now() + 5 * 86_400_000);
    const { key } = await stack.gw.app.get(AccessKeyService).create(who.username, { expiresAt: keyEnds });
    const prefix = key.slice(0, 12);
    const ref = `${stack.gw.host}/acme/app:v1.0.0`;
    const inspect = ['inspect', '--tls-verify=false', '--creds', `${who.username}:${key}`, `docker://${ref}`];
    const tools = await createContainerToolsSandbox();
    try {
      // Debian trixie's skopeo 1.18 (scripts/sigstore-tools.sh): containers/image logs each warning.
      const trixie = await sigstoreTools();
      expect(trixie.version).toBe('skopeo version 1.18.0');
      const printed = await trixie.skopeo(['--insecure-policy', ...inspect], { env: tools.env });
      expect(printed.code).toBe(0);
      const warnings = [
        ...printed.stderr.matchAll(/Warning from registry \(first encountered at [^)]*\): \\"(.*?)\\""/g),
      ];
      expect(warnings.map((m) => m[1])).toEqual([
        `your access to acme/app expires on ${iso(grantEnds)}`,
        `your access key ${prefix} expires on ${iso(keyEnds)}`,
      ]);
      // Debian bookworm's skopeo 1.9.3 and podman 4.3.1 pull without a word of it.
      expect((await run('skopeo', ['--version'])).stdout.trim()).toBe('skopeo version 1.9.3');
      const old = await tools.skopeo(inspect);
      expect(old.code).toBe(0);
      expect(old.stderr).not.toContain('expires on');
      expect((await run('podman', ['--version'])).stdout.trim()).toBe('podman version 4.3.1');
      const podman = await tools.podman([
        'pull',
        '--tls-verify=false',
        '--creds',
        `${who.username}:${key}`,
        ref,
      ]);
      expect(podman.code).toBe(0);
      expect(podman.stdout + podman.stderr).not.toContain('expires on');
    } finally {
      await tools.cleanup();
    }
    // Debian's Docker engine 20.10: the daemon pulls, and neither it nor the CLI shows the header.
    const engine = await startDockerEngine({ insecureRegistries: [stack.gw.host] });
    try {
      expect((await engine.docker(['version', '--format', '{{.Server.Version}}'])).stdout.trim()).toMatch(
        /^20\.10\./,
      );
      expect((await engine.docker(['login', '-u', who.username, '-p', key, stack.gw.host])).code).toBe(0);
      const pulled = await engine.docker(['pull', ref]);
      expect(pulled.code).toBe(0);
      expect(pulled.stdout + pulled.stderr + engine.log()).not.toContain('expires on');
    } finally {
      await engine.stop();
    }
  }, 300_000);

  it("prints a cosign verify line that verifies the vendor's signature through the gateway", async () => {
    const sigstore = await sigstoreTools();
    const tools = await createContainerToolsSandbox();
    try {
      // The vendor signs other/secret:1.0 (skopeo's sigstore attachment at sha256-<hex>.sig).
      const key = await generateSigstoreKey(sigstore, tools.dir, { env: tools.env });
      const registriesDir = join(tools.dir, 'registries.d');
      await mkdir(registriesDir);
      await writeFile(
        join(registriesDir, 'vendor.yaml'),
        `docker:\n  ${stack.registry.hostPort}:\n    use-sigstore-attachments: true\n`,
      );
      await signInRegistry(sigstore, {
        hostPort: stack.registry.hostPort,
        repository: 'other/secret',
        tag: '1.0',
        identity: `${stack.gw.host}/other/secret:1.0`,
        key,
        registriesDir,
        env: tools.env,
      });
      const who = await stack.member('cosign', { 'other/secret': ['1.0'] });
      const html = await (
        await fetch(`${stack.gw.url}/portal/overview`, {
          headers: { cookie: await signIn(stack, who) },
        })
      ).text();
      const line = [...html.matchAll(/<pre id="[^"]+-cosign-\d+"><code>([^<]+)<\/code><\/pre>/g)].map((m) =>
        decode(m[1]),
      );
      const digest = stack.seed.images['other/secret:1.0'].digest;
      expect(line).toEqual([`cosign verify --key cosign.pub ${stack.gw.host}/other/secret@${digest}`]);
      // Run as printed, after `docker login` (a docker config), with the vendor's key as cosign.pub;
      // plus plain http and no transparency log, which this test's registry and signature need.
      const docker = join(tools.dir, 'docker');
      await mkdir(docker);
      await writeFile(
        join(docker, 'config.json'),
        JSON.stringify({
          auths: { [stack.gw.host]: { auth: Buffer.from(`${who.username}:${who.key}`).toString('base64') } },
        }),
      );
      const [, ...args] = line[0]
        .replace('cosign.pub', key.publicKeyPath)
        .replace(
          'cosign verify',
          'cosign verify --insecure-ignore-tlog=true --allow-http-registry --output json',
        )
        .split(' ');
      const verified = await sigstore.cosign(args, { env: { ...tools.env, DOCKER_CONFIG: docker } });
      expect({ code: verified.code, stderr: verified.stderr }).toMatchObject({ code: 0 });
      const payloads = JSON.parse(verified.stdout) as Array<{ critical: { image: Record<string, string> } }>;
      expect(payloads.map((p) => p.critical.image['docker-manifest-digest'])).toEqual([digest]);
    } finally {
      await tools.cleanup();
    }
  }, 300_000);
});
