import { mkdir, readFile, writeFile } from 'node:fs/promises';
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
  OCI_INDEX,
  OCI_MANIFEST,
  pushManifest,
  seedImage,
  signInRegistry,
  SIGSTORE_SIGNATURE_ANNOTATION,
  SigstoreKeyFiles,
  sigstoreSignatureProblem,
  writeSigstoreKeyPair,
} from '@gatehouse/testing/upstream';

const sigTag = (digest: string) => `sha256-${digest.slice('sha256:'.length)}.sig`;

/**
 * Issue 17 item 3: verification of signed images through the gateway. The vendor signs images in
 * the upstream with a sigstore key the harness makes in the format containers/image reads
 * (cosign is not installed and not in Debian): by `skopeo copy --sign-by-sigstore-private-key`
 * where skopeo can, else by the harness's signer writing the same attachment, since Debian's
 * skopeo 1.9.3 is built with sigstore signing disabled. The member's podman runs a
 * `sigstoreSigned` policy for the gateway with `use-sigstore-attachments: true` (private
 * policy.json and registries.d: nothing of the machine changes). Debian's podman 4.3.1 fetches
 * sigstore attachments but refuses to evaluate them ("Debian-local change: sigstore disabled"),
 * so each signature the gateway serves is also checked here by containers/image's rules.
 */
describe('sigstore signatures verified by podman through the gateway', () => {
  let stack: UpstreamGatewayStack;
  let gw: TestGateway;
  let tools: ContainerToolsSandbox;
  let key: SigstoreKeyFiles;
  let member: StackMember;
  let policyPath: string;

  const signedBy: string[] = [];
  const sign = async (repository: string, tag: string) => {
    // The vendor signs for the name customers pull (the gateway's), as it would for its own domain.
    const by = await signInRegistry({
      registryUrl: stack.registry.url,
      hostPort: stack.registry.hostPort,
      repository,
      tag,
      manifestDigest: seedImage(stack.seed, repository, tag).digest,
      identity: `${gw.host}/${repository}:${tag}`,
      key,
      registriesDir: join(tools.dir, 'registries.vendor.d'),
      env: tools.env,
    });
    signedBy.push(by);
  };

  const podmanPull = (ref: string) =>
    tools.podman([
      'pull',
      '--tls-verify=false',
      '--signature-policy',
      policyPath,
      '--creds',
      `${member.username}:${member.key}`,
      `${gw.host}/${ref}`,
    ]);

  const upstreamManifest = async (repository: string, reference: string) => {
    const res = await fetch(`${stack.registry.url}/v2/${repository}/manifests/${reference}`, {
      headers: { accept: `${OCI_MANIFEST}, ${OCI_INDEX}` },
    });
    return { status: res.status, body: res.status === 200 ? Buffer.from(await res.arrayBuffer()) : null };
  };

  beforeAll(async () => {
    stack = await startUpstreamGatewayStack({ patLabel: 'signatures-podman' });
    gw = stack.gw;
    tools = await createContainerToolsSandbox();
    key = await writeSigstoreKeyPair(tools.dir);
    // The vendor's registries.d: signatures as sigstore attachments in the upstream registry.
    await mkdir(join(tools.dir, 'registries.vendor.d'));
    await writeFile(
      join(tools.dir, 'registries.vendor.d', 'upstream.yaml'),
      `docker:\n  ${stack.registry.hostPort}:\n    use-sigstore-attachments: true\n`,
    );
    // The member's: read sigstore attachments from the gateway. containers/image reads the
    // per-user registries.d under $HOME; both spellings of the user config dir get it.
    const memberConf = `docker:\n  ${gw.host}:\n    use-sigstore-attachments: true\n`;
    for (const dir of [join(tools.env.HOME!, '.config'), tools.env.XDG_CONFIG_HOME!]) {
      await mkdir(join(dir, 'containers', 'registries.d'), { recursive: true });
      await writeFile(join(dir, 'containers', 'registries.d', 'gateway.yaml'), memberConf);
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
    await sign('other/secret', '1.0');
    // Tamper with the rc image's signature upstream: same payload, a different signature value.
    const rc = seedImage(stack.seed, 'acme/app', 'v2.0.0-rc.1');
    const sig = await upstreamManifest('acme/app', sigTag(rc.digest));
    if (!sig.body)
      throw new Error(`skopeo left no sigstore attachment for acme/app:v2.0.0-rc.1 (${sig.status})`);
    const manifest = JSON.parse(sig.body.toString()) as {
      layers: Array<{ annotations: Record<string, string> }>;
    };
    const value = manifest.layers[0].annotations[SIGSTORE_SIGNATURE_ANNOTATION];
    const flipped = Buffer.from(value, 'base64');
    flipped[flipped.length - 1] ^= 0x01;
    manifest.layers[0].annotations[SIGSTORE_SIGNATURE_ANNOTATION] = flipped.toString('base64');
    await pushManifest(stack.registry.url, 'acme/app', sigTag(rc.digest), manifest);
    member = await stack.member('verifier', {
      'acme/tool': ['1.0.0'],
      'acme/app': ['v1.0.0', 'v2.0.0-rc.1'],
      'other/secret': ['9.9.9'],
    });
  }, 180_000);

  afterAll(async () => {
    await tools?.cleanup();
    await stack?.stop();
  });

  /** The signature as the gateway serves it to the member, checked by containers/image's rules. */
  const gatewaySignatureProblem = async (repository: string, tag: string) => {
    const token = await stack.token(member, [`repository:${repository}:pull`]);
    const auth = { authorization: `Bearer ${token}` };
    const image = await fetch(`${gw.url}/v2/${repository}/manifests/${tag}`, {
      method: 'HEAD',
      headers: {
        ...auth,
        accept: `${OCI_MANIFEST}, ${OCI_INDEX}, application/vnd.docker.distribution.manifest.v2+json`,
      },
    });
    const digest = image.headers.get('docker-content-digest')!;
    const sig = await fetch(`${gw.url}/v2/${repository}/manifests/${sigTag(digest)}`, {
      headers: { ...auth, accept: OCI_MANIFEST },
    });
    expect(sig.status).toBe(200);
    const manifest = (await sig.json()) as {
      layers: Array<{ mediaType: string; digest: string; annotations?: Record<string, string> }>;
    };
    const layer = manifest.layers[0];
    const payload = await fetch(`${gw.url}/v2/${repository}/blobs/${layer.digest}`, { headers: auth });
    expect(payload.status).toBe(200);
    return sigstoreSignatureProblem({
      layerMediaType: layer.mediaType,
      payload: Buffer.from(await payload.arrayBuffer()),
      annotations: layer.annotations,
      publicKeyPem: await readFile(key.publicKeyPath, 'utf8'),
      manifestDigest: digest,
      identity: `${gw.host}/${repository}:${tag}`,
    });
  };

  /** What the member's podman asked the gateway for (its audit rows), after `since`. */
  const gatewayRowsFor = async (since: Date) => {
    await gw.app.get(AuditService).flush(10_000);
    const rows = await gw.app.get(AuditQueryService).find({ username: member.username, limit: 500 });
    return rows.filter((r) => r.occurredAt >= since).map((r) => `${r.action} ${r.reference} ${r.httpStatus}`);
  };

  it('refuses, under the sigstoreSigned policy, an entitled image that has no signature at the gateway', async () => {
    const pull = await podmanPull('acme/app:v1.0.0');
    expect(pull.code).not.toBe(0);
    expect(pull.stderr).toMatch(/A signature was required, but no signature exists/);
  });

  it("serves podman a signed image's sigstore attachment, and the signature holds (podman pulls it where its build verifies sigstore)", async () => {
    const since = new Date(Date.now() - 1000);
    const tool = seedImage(stack.seed, 'acme/tool', '1.0.0');
    const pull = await podmanPull('acme/tool:1.0.0');
    // podman asked the gateway for the attachment and got it (manifest, then the payload blob)
    expect(await gatewayRowsFor(since)).toEqual(
      expect.arrayContaining([
        `manifest.get ${sigTag(tool.digest)} 200`,
        expect.stringMatching(/^blob\.get sha256:\S+ 200$/),
      ]),
    );
    // Debian builds podman with sigstore verification disabled; anywhere else the pull succeeds.
    if (/Debian-local change: sigstore disabled/.test(pull.stderr)) {
      expect(pull.code).not.toBe(0);
    } else {
      expect({ code: pull.code, stderr: pull.stderr }).toMatchObject({ code: 0 });
    }
    // The signature the gateway served holds, by containers/image's rules.
    expect(await gatewaySignatureProblem('acme/tool', '1.0.0')).toBeNull();
  });

  it('refuses an image whose signature was tampered with upstream (podman refuses it, and the served signature fails)', async () => {
    const pull = await podmanPull('acme/app:v2.0.0-rc.1');
    expect(pull.code).not.toBe(0);
    expect(pull.stderr).not.toMatch(/no signature exists/i);
    expect(await gatewaySignatureProblem('acme/app', 'v2.0.0-rc.1')).toBe(
      'cryptographic signature verification failed',
    );
  });

  it('does not let the member read the signature of an image it may not pull', async () => {
    const secret = seedImage(stack.seed, 'other/secret', '1.0');
    // It is there upstream...
    expect((await upstreamManifest('other/secret', sigTag(secret.digest))).status).toBe(200);
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
    const pull = await podmanPull('other/secret:1.0');
    expect(pull.code).not.toBe(0);
  });
});
