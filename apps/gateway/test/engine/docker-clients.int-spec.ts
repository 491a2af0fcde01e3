import { AuditQueryService, AuditService } from '@gatehouse/audit';
import { DockerEngine, EngineUnavailableError, startDockerEngine } from '@gatehouse/testing/engine';
import {
  StackMember,
  startUpstreamGatewayStack,
  TestGateway,
  UpstreamGatewayStack,
} from '@gatehouse/testing/gateway';
import {
  ContainerToolsSandbox,
  createContainerToolsSandbox,
  seedImage,
  seedManifestFor,
} from '@gatehouse/testing/upstream';

/**
 * The real-engine tier, clients side: Debian's Docker engine (dockerd 20.10 and its client),
 * containerd's ctr and podman pull through the real gateway in front of the seeded registry.
 * A private dockerd and containerd are started under .tmp/engine/ and stopped by PID; when
 * they cannot start, every test here fails with the one line saying why.
 */
describe('real engine: docker, containerd and podman through the gateway', () => {
  let stack: UpstreamGatewayStack;
  let gw: TestGateway;
  let engine: DockerEngine;
  let tools: ContainerToolsSandbox;
  let pinned: StackMember;

  beforeAll(async () => {
    stack = await startUpstreamGatewayStack({ patLabel: 'engine-clients' });
    gw = stack.gw;
    // Plain http on loopback: the daemon must be told, as customers do in daemon.json.
    engine = await startDockerEngine({ insecureRegistries: [gw.host] });
    tools = await createContainerToolsSandbox();
    pinned = await stack.member('docker', { 'acme/app': ['v1.0.0'], 'acme/tool': ['1.0.0'] });
  });

  afterAll(async () => {
    await engine?.stop();
    await tools?.cleanup();
    await stack?.stop();
  });

  async function auditRows(username: string, action: string) {
    await gw.app.get(AuditService).flush(10_000);
    return gw.app.get(AuditQueryService).find({ username, action });
  }

  it('docker login succeeds with a member key and is refused with a wrong one', async () => {
    const ok = await engine.docker(['login', '-u', pinned.username, '-p', pinned.key, gw.host]);
    expect({ code: ok.code, stdout: ok.stdout }).toMatchObject({
      code: 0,
      stdout: expect.stringMatching(/Login Succeeded/),
    });

    const bad = await engine.docker(['login', '-u', pinned.username, '-p', `ghk_${'x'.repeat(43)}`, gw.host]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/unauthorized|invalid username\/password/i);
    const refused = await auditRows(pinned.username, 'token.refuse');
    expect(refused.some((r) => r.reason === 'bad_credentials' && r.httpStatus === 401)).toBe(true);
  });

  it('docker pull of the multi-arch tag stores the upstream index digest as the RepoDigest', async () => {
    const image = seedImage(stack.seed, 'acme/app', 'v1.0.0');
    const ref = `${gw.host}/acme/app:v1.0.0`;
    const login = await engine.docker(['login', '-u', pinned.username, '-p', pinned.key, gw.host]);
    expect(login.code).toBe(0);
    const pull = await engine.docker(['pull', ref]);
    expect({ code: pull.code, stderr: pull.stderr }).toEqual({ code: 0, stderr: '' });
    expect(pull.stdout).toContain(`Digest: ${image.digest}`);
    const inspect = await engine.docker(['image', 'inspect', '--format', '{{json .RepoDigests}}', ref]);
    expect(JSON.parse(inspect.stdout)).toEqual([`${gw.host}/acme/app@${image.digest}`]);
    // The engine picked the amd64 child of the index.
    const id = await engine.docker(['image', 'inspect', '--format', '{{.Id}}', ref]);
    expect(id.stdout.trim()).toBe(seedManifestFor(image, 'amd64').config.digest);
  });

  it('docker manifest inspect needs --insecure: the client reads the plain-http registry itself', async () => {
    // A Docker schema2 image: the 20.10 client cannot inspect OCI manifests at all
    // ("unsupported manifest media type"), whichever registry serves them.
    const tool = seedImage(stack.seed, 'acme/tool', '1.0.0');
    const login = await engine.docker(['login', '-u', pinned.username, '-p', pinned.key, gw.host]);
    expect(login.code).toBe(0);
    const ref = `${gw.host}/acme/tool:1.0.0`;
    // The daemon's insecure-registries do not apply to the client: without --insecure it tries
    // https only and says, misleadingly, that the manifest does not exist.
    const secure = await engine.docker(['manifest', 'inspect', ref]);
    expect(secure.code).not.toBe(0);
    expect(secure.stderr.trim()).toBe(`no such manifest: ${ref}`);
    const insecure = await engine.docker(['manifest', 'inspect', '--insecure', ref]);
    expect({ code: insecure.code, stderr: insecure.stderr }).toEqual({ code: 0, stderr: '' });
    const manifest = JSON.parse(insecure.stdout) as { config: { digest: string } };
    expect(manifest.config.digest).toBe(tool.manifests[0].config.digest);
  });

  it('docker pull of a tag outside the entitlement prints the gateway refusal', async () => {
    const login = await engine.docker(['login', '-u', pinned.username, '-p', pinned.key, gw.host]);
    expect(login.code).toBe(0);
    const pull = await engine.docker(['pull', `${gw.host}/acme/app:v1.1.0`]);
    expect(pull.code).not.toBe(0);
    // What the customer reads, exactly as the Docker client prints it: the contract's 404
    // MANIFEST_UNKNOWN (a refusal never tells whether the tag exists); the audit row says why.
    expect(pull.stderr.trim()).toBe(
      `Error response from daemon: manifest for ${gw.host}/acme/app:v1.1.0 not found: manifest unknown: manifest unknown to registry`,
    );
    const refused = await auditRows(pinned.username, 'manifest.get');
    expect(refused.some((r) => r.reference === 'v1.1.0' && r.outcome === 'denied')).toBe(true);
  });

  it('ctr images pull --plain-http --user goes through the POST token flow of containerd', async () => {
    const image = seedImage(stack.seed, 'acme/app', 'v1.0.0');
    const ref = `${gw.host}/acme/app:v1.0.0`;
    const pull = await engine.ctr(
      [
        'images',
        'pull',
        '--plain-http',
        '--user',
        `${pinned.username}:${pinned.key}`,
        '--snapshotter',
        'native',
        ref,
      ],
      { timeoutMs: 120_000 },
    );
    expect({ code: pull.code, stderr: pull.stderr }).toMatchObject({ code: 0 });
    const list = await engine.ctr(['images', 'list']);
    expect(list.stdout).toContain(ref);
    expect(list.stdout).toContain(image.digest);
    // containerd's resolver POSTs the OAuth2 form (grant_type=password, client_id=containerd-client).
    const issued = await auditRows(pinned.username, 'token.issue');
    expect(
      issued.some((r) => r.details?.method === 'POST' && r.details?.clientId === 'containerd-client'),
    ).toBe(true);
  });

  it('podman pull --arch arm64 gets the arm64 child of the same index', async () => {
    const m = seedManifestFor(seedImage(stack.seed, 'acme/app', 'v1.0.0'), 'arm64');
    const pull = await tools.podman([
      'pull',
      '--tls-verify=false',
      '--creds',
      `${pinned.username}:${pinned.key}`,
      '--arch',
      'arm64',
      `${gw.host}/acme/app:v1.0.0`,
    ]);
    expect({ code: pull.code }).toEqual({ code: 0 });
    expect(pull.stdout.trim()).toBe(m.config.digest.slice(7));
  });

  it('a daemon that cannot start fails the tier with one line saying why', async () => {
    // dockerd refuses this flag value at start, as it would refuse a broken machine.
    const failed = await startDockerEngine({ insecureRegistries: ['not a registry'] }).then(
      () => null,
      (e: Error) => e,
    );
    expect(failed).toBeInstanceOf(EngineUnavailableError);
    expect(failed!.message.split('\n')).toHaveLength(1);
    expect(failed!.message).toMatch(/^docker engine tier cannot start: dockerd exited: .*not a registry/);
  });
});
