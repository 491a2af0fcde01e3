import { mkdir, writeFile } from 'node:fs/promises';
import { AuditQueryService, AuditService } from '@gatehouse/audit';
import { join } from 'node:path';
import {
  StackMember,
  startUpstreamGatewayStack,
  TestGateway,
  UpstreamGatewayStack,
} from '@gatehouse/testing/gateway';
import {
  ContainerToolsSandbox,
  createContainerToolsSandbox,
  generateSigstoreKey,
  OCI_INDEX,
  OCI_MANIFEST,
  pushBlob,
  pushManifest,
  seedImage,
  signInRegistry,
  SIGSTORE_SIGNATURE_ANNOTATION,
  SigstoreKeyFiles,
  SigstoreTools,
  sigstoreTools,
} from '@gatehouse/testing/upstream';

const sigTag = (digest: string) => `sha256-${digest.slice('sha256:'.length)}.sig`;

/**
 * Issue 17 item 3: verification of signed images through the gateway, by real parts. The vendor
 * makes a key with `skopeo generate-sigstore-key` and signs images in the upstream registry with
 * `skopeo copy --sign-by-sigstore-private-key` (sigstore attachments at `sha256-<hex>.sig`). The
 * member copies through the gateway with `skopeo copy --policy`, a `sigstoreSigned` requirement
 * for the gateway's host and `use-sigstore-attachments: true`: containers/image's own signature
 * policy, the code podman and CRI-O run on a pull. The skopeo is Debian trixie's 1.18 unpacked
 * into .tmp/ by scripts/sigstore-tools.sh (bookworm's skopeo and podman are built with sigstore
 * disabled); `cosign verify` (trixie's cosign 2.5, from the same script) agrees, and bookworm's
 * podman still shows the policy refusing an unsigned image.
 */
describe('sigstore signatures verified through the gateway (skopeo with a sigstoreSigned policy)', () => {
  let stack: UpstreamGatewayStack;
  let gw: TestGateway;
  let tools: ContainerToolsSandbox;
  let sigstore: SigstoreTools;
  let key: SigstoreKeyFiles;
  let member: StackMember;
  let policyPath: string;
  let memberRegistriesDir: string;

  const sign = (repository: string, tag: string) =>
    // The vendor signs for the name customers pull (the gateway's), as it would for its own domain.
    signInRegistry(sigstore, {
      hostPort: stack.registry.hostPort,
      repository,
      tag,
      identity: `${gw.host}/${repository}:${tag}`,
      key,
      registriesDir: join(tools.dir, 'registries.vendor.d'),
      env: tools.env,
    });

  /** The member's verified copy: `skopeo copy --policy` through the gateway into a directory. */
  let copies = 0;
  const verifiedCopy = (ref: string) =>
    sigstore.skopeo(
      [
        '--policy',
        policyPath,
        '--registries.d',
        memberRegistriesDir,
        'copy',
        '--src-tls-verify=false',
        '--src-creds',
        `${member.username}:${member.key}`,
        `docker://${gw.host}/${ref}`,
        `dir:${join(tools.dir, `copy-${++copies}`)}`,
      ],
      { env: tools.env },
    );

  /** `cosign verify` with the vendor's public key through the gateway, as the member. */
  const cosignVerify = (ref: string) =>
    sigstore.cosign(
      [
        'verify',
        '--key',
        key.publicKeyPath,
        // a key-signed attachment with no transparency-log entry, as skopeo writes it
        '--insecure-ignore-tlog=true',
        '--allow-http-registry',
        '--output',
        'json',
        `${gw.host}/${ref}`,
      ],
      { env: { ...tools.env, DOCKER_CONFIG: join(tools.dir, 'docker') } },
    );

  const upstreamManifest = async (repository: string, reference: string) => {
    const res = await fetch(`${stack.registry.url}/v2/${repository}/manifests/${reference}`, {
      headers: { accept: `${OCI_MANIFEST}, ${OCI_INDEX}` },
    });
    return { status: res.status, body: res.status === 200 ? Buffer.from(await res.arrayBuffer()) : null };
  };

  /** Re-pushes the signature attachment of `repository@digest` upstream, changed by `tamper`. */
  const tamperUpstream = async (
    repository: string,
    digest: string,
    tamper: (layer: { digest: string; size: number; annotations: Record<string, string> }) => Promise<void>,
  ) => {
    const sig = await upstreamManifest(repository, sigTag(digest));
    if (!sig.body)
      throw new Error(`skopeo left no sigstore attachment for ${repository}@${digest} (${sig.status})`);
    const manifest = JSON.parse(sig.body.toString()) as {
      layers: Array<{ digest: string; size: number; annotations: Record<string, string> }>;
    };
    await tamper(manifest.layers[0]);
    await pushManifest(stack.registry.url, repository, sigTag(digest), manifest);
  };

  beforeAll(async () => {
    // The real signer and verifier first: without them the suite fails with the script's one line.
    sigstore = await sigstoreTools();
    stack = await startUpstreamGatewayStack({ patLabel: 'signatures-verify' });
    gw = stack.gw;
    tools = await createContainerToolsSandbox();
    key = await generateSigstoreKey(sigstore, tools.dir, { env: tools.env });
    // The vendor's registries.d: signatures as sigstore attachments in the upstream registry.
    await mkdir(join(tools.dir, 'registries.vendor.d'));
    await writeFile(
      join(tools.dir, 'registries.vendor.d', 'upstream.yaml'),
      `docker:\n  ${stack.registry.hostPort}:\n    use-sigstore-attachments: true\n`,
    );
    // The member's: read sigstore attachments from the gateway (given to skopeo as --registries.d;
    // podman reads the per-user registries.d under $HOME, both spellings of the config dir).
    memberRegistriesDir = join(tools.dir, 'registries.member.d');
    const memberConf = `docker:\n  ${gw.host}:\n    use-sigstore-attachments: true\n`;
    for (const dir of [
      memberRegistriesDir,
      join(tools.env.HOME!, '.config', 'containers', 'registries.d'),
      join(tools.env.XDG_CONFIG_HOME!, 'containers', 'registries.d'),
    ]) {
      await mkdir(dir, { recursive: true });
      await writeFile(join(dir, 'gateway.yaml'), memberConf);
    }
    policyPath = join(tools.dir, 'policy.sigstore.json');
    await writeFile(
      policyPath,
      JSON.stringify({
        default: [{ type: 'reject' }],
        transports: {
          docker: {
            [gw.host]: [
              {
                type: 'sigstoreSigned',
                keyPath: key.publicKeyPath,
                signedIdentity: { type: 'matchRepository' },
              },
            ],
          },
        },
      }),
    );
    await sign('acme/tool', '1.0.0');
    await sign('acme/app', 'v2.0.0-rc.1');
    await sign('acme/app', 'v1.1.0');
    await sign('other/secret', '1.0');
    // Tamper with signatures upstream. rc: same payload, one bit of the signature flipped.
    const rc = seedImage(stack.seed, 'acme/app', 'v2.0.0-rc.1');
    await tamperUpstream('acme/app', rc.digest, async (layer) => {
      const flipped = Buffer.from(layer.annotations[SIGSTORE_SIGNATURE_ANNOTATION], 'base64');
      flipped[flipped.length - 1] ^= 0x01;
      layer.annotations[SIGSTORE_SIGNATURE_ANNOTATION] = flipped.toString('base64');
    });
    // v1.1.0 (an index): the signatures kept, the payloads they sign rewritten (a space added).
    // `copy --all` signed the index and each platform's manifest, and a copy of one platform is
    // judged by that manifest's signature, so every one of them is tampered with.
    const v110 = seedImage(stack.seed, 'acme/app', 'v1.1.0');
    for (const digest of [v110.digest, ...v110.manifests.map((m) => m.digest)])
      await tamperUpstream('acme/app', digest, async (layer) => {
        const res = await fetch(`${stack.registry.url}/v2/acme/app/blobs/${layer.digest}`);
        const payload = Buffer.concat([Buffer.from(await res.arrayBuffer()), Buffer.from(' ')]);
        const pushed = await pushBlob(stack.registry.url, 'acme/app', payload);
        layer.digest = pushed.digest;
        layer.size = pushed.size;
      });
    member = await stack.member('verifier', {
      'acme/tool': ['1.0.0'],
      'acme/app': ['v1.0.0', 'v1.1.0', 'v2.0.0-rc.1'],
      'other/secret': ['9.9.9'],
    });
    // cosign reads the member's login from a docker config, as after `docker login`
    await mkdir(join(tools.dir, 'docker'));
    await writeFile(
      join(tools.dir, 'docker', 'config.json'),
      JSON.stringify({
        auths: { [gw.host]: { auth: Buffer.from(`${member.username}:${member.key}`).toString('base64') } },
      }),
    );
  }, 240_000);

  afterAll(async () => {
    await tools?.cleanup();
    await stack?.stop();
  });

  /** What the member asked the gateway for (its audit rows), after `since`. */
  const gatewayRowsFor = async (since: Date) => {
    await gw.app.get(AuditService).flush(10_000);
    const rows = await gw.app.get(AuditQueryService).find({ username: member.username, limit: 500 });
    return rows.filter((r) => r.occurredAt >= since).map((r) => `${r.action} ${r.reference} ${r.httpStatus}`);
  };

  it('is run with a skopeo that verifies sigstore signatures', () => {
    expect(sigstore.version).toMatch(/^skopeo version (\d+)\.(\d+)/);
  });

  it('copies a signed entitled image with verification on, reading the signature through the gateway', async () => {
    const since = new Date(Date.now() - 1000);
    const tool = seedImage(stack.seed, 'acme/tool', '1.0.0');
    const copy = await verifiedCopy('acme/tool:1.0.0');
    expect({ code: copy.code, stderr: copy.stderr }).toMatchObject({ code: 0 });
    // skopeo asked the gateway for the attachment and got it (manifest, then the payload blob)
    expect(await gatewayRowsFor(since)).toEqual(
      expect.arrayContaining([
        `manifest.get ${sigTag(tool.digest)} 200`,
        expect.stringMatching(/^blob\.get sha256:\S+ 200$/),
      ]),
    );
  });

  it('refuses an image whose signature value was tampered with upstream', async () => {
    const copy = await verifiedCopy('acme/app:v2.0.0-rc.1');
    expect(copy.code).not.toBe(0);
    expect(copy.stderr).toMatch(/Source image rejected: cryptographic signature verification failed/);
  });

  it('refuses an image whose signed payload was tampered with upstream', async () => {
    const copy = await verifiedCopy('acme/app:v1.1.0');
    expect(copy.code).not.toBe(0);
    expect(copy.stderr).toMatch(/Source image rejected: cryptographic signature verification failed/);
  });

  it('refuses an unsigned entitled image (skopeo, and podman by the same policy)', async () => {
    const copy = await verifiedCopy('acme/app:v1.0.0');
    expect(copy.code).not.toBe(0);
    expect(copy.stderr).toMatch(/A signature was required, but no signature exists/);
    const pull = await tools.podman([
      'pull',
      '--tls-verify=false',
      '--signature-policy',
      policyPath,
      '--creds',
      `${member.username}:${member.key}`,
      `${gw.host}/acme/app:v1.0.0`,
    ]);
    expect(pull.code).not.toBe(0);
    expect(pull.stderr).toMatch(/A signature was required, but no signature exists/);
  });

  it('verifies with cosign too: the signed image holds, the tampered and unsigned ones do not', async () => {
    const tool = seedImage(stack.seed, 'acme/tool', '1.0.0');
    const ok = await cosignVerify('acme/tool:1.0.0');
    expect({ code: ok.code, stderr: ok.stderr }).toMatchObject({ code: 0 });
    const verified = JSON.parse(ok.stdout) as Array<{ critical: { image: Record<string, string> } }>;
    expect(verified.map((v) => v.critical.image['docker-manifest-digest'])).toEqual([tool.digest]);
    const refusals = {
      'acme/app:v2.0.0-rc.1': /no matching signatures: invalid signature/,
      'acme/app:v1.1.0': /no matching signatures: invalid signature/,
      'acme/app:v1.0.0': /no signatures found/,
    };
    for (const [ref, message] of Object.entries(refusals)) {
      const refused = await cosignVerify(ref);
      expect({ ref, code: refused.code }).not.toEqual({ ref, code: 0 });
      expect(refused.stderr).toMatch(message);
    }
  });

  it('does not let the member read the signature of an image it may not pull, nor ask upstream for it', async () => {
    const secret = seedImage(stack.seed, 'other/secret', '1.0');
    const hex = secret.digest.slice('sha256:'.length);
    // It is there upstream...
    expect((await upstreamManifest('other/secret', sigTag(secret.digest))).status).toBe(200);
    // (a tags/list page cursor may name the tag: the gateway lists the repository's tags for the
    // member's rules; what must not happen is a request for the manifest or its blobs)
    const asked = () => stack.front.countRequests((r) => r.path.includes(hex));
    const before = asked();
    // ...and the gateway answers as for a tag that does not exist, and lists no referrers.
    const token = await stack.token(member, ['repository:other/secret:pull']);
    const auth = { authorization: `Bearer ${token}` };
    const sig = await fetch(`${gw.url}/v2/other/secret/manifests/${sigTag(secret.digest)}`, {
      headers: auth,
    });
    expect(sig.status).toBe(404);
    expect(((await sig.json()) as { errors: Array<{ code: string }> }).errors[0].code).toBe(
      'MANIFEST_UNKNOWN',
    );
    const referrers = await fetch(`${gw.url}/v2/other/secret/referrers/${secret.digest}`, { headers: auth });
    expect(referrers.status).toBe(200);
    expect(await referrers.json()).toEqual({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [] });
    expect(asked()).toBe(before);
    const copy = await verifiedCopy('other/secret:1.0');
    expect(copy.code).not.toBe(0);
  });
});
