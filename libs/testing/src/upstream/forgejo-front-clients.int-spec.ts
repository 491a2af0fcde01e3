import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createContainerToolsSandbox, ContainerToolsSandbox } from './clients';
import { ForgejoFront, generatePat, startForgejoFront } from './forgejo-front';
import { startRegistry, RegistryProcess } from './registry-process';
import { prepareSeededStorage, seedBlobs, seedImage, seedManifestFor, SeedInfo } from './seed';

const sha256 = (text: string | Buffer): string => 'sha256:' + createHash('sha256').update(text).digest('hex');

describe('Forgejo front with real clients (skopeo, podman)', () => {
  let seed: SeedInfo;
  let registry: RegistryProcess;
  let front: ForgejoFront;
  let tools: ContainerToolsSandbox;
  const pat = generatePat('clients');
  // skopeo and podman refuse an empty username ("username can't be empty") and send no Basic
  // auth to the token endpoint unless both parts are set, so real clients use any username.
  const creds = `gatehouse:${pat}`;
  const upstreamCreds = { username: 'forgejo', password: 'storage-pw' };

  beforeAll(async () => {
    seed = await prepareSeededStorage();
    registry = await startRegistry({ copyFrom: seed.storageDir, htpasswd: upstreamCreds });
    front = await startForgejoFront({
      upstreamUrl: registry.url,
      upstreamCreds,
      knownOwners: ['acme', 'other'],
      tokens: { [pat]: { scopes: ['read:package'] } },
    });
    tools = await createContainerToolsSandbox();
  });

  afterAll(async () => {
    await tools?.cleanup();
    await front?.stop();
    await registry?.stop();
  });

  it('lets skopeo inspect every seeded image through the Bearer flow, digests unchanged', async () => {
    for (const [ref, image] of Object.entries(seed.images)) {
      const r = await tools.skopeo([
        'inspect',
        '--raw',
        '--tls-verify=false',
        '--creds',
        creds,
        `docker://${front.hostPort}/${ref}`,
      ]);
      expect({ ref, code: r.code, stderr: r.stderr }).toEqual({ ref, code: 0, stderr: '' });
      expect(sha256(r.stdout)).toBe(image.digest);
    }
    expect(front.countRequests((r) => r.kind === 'token' && r.status === 200)).toBeGreaterThan(0);
  });

  it('shows that skopeo cannot send the empty-username form ":<PAT>" itself', async () => {
    const r = await tools.skopeo([
      'inspect',
      '--raw',
      '--tls-verify=false',
      '--creds',
      `:${pat}`,
      `docker://${front.hostPort}/acme/app:v1.0.0`,
    ]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("username can't be empty");
  });

  it.each([
    ['streamed', false],
    ['served direct from storage', true],
  ])('copies the multi-arch index with skopeo copy --all, blobs %s', async (_label, direct) => {
    const image = seedImage(seed, 'acme/app', 'v1.1.0');
    const dest = join(tools.dir, `copy-${direct ? 'direct' : 'streamed'}`);
    front.setServeDirect(direct);
    front.resetCounts();
    try {
      const r = await tools.skopeo([
        'copy',
        '--all',
        '--preserve-digests',
        '--src-tls-verify=false',
        '--src-creds',
        creds,
        `docker://${front.hostPort}/acme/app:v1.1.0`,
        `oci:${dest}:v1.1.0`,
      ]);
      expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
    } finally {
      front.setServeDirect(false);
    }
    const index = JSON.parse(await readFile(join(dest, 'index.json'), 'utf8'));
    expect(index.manifests[0].digest).toBe(image.digest);
    for (const blob of seedBlobs(image)) {
      const bytes = await readFile(join(dest, 'blobs', 'sha256', blob.digest.slice(7)));
      expect(createHash('sha256').update(bytes).digest('hex')).toBe(blob.digest.slice(7));
    }
    const storageHits = front.countRequests(
      (r) => r.server === 'storage' && r.kind === 'blob' && r.status === 200,
    );
    expect(storageHits).toBe(direct ? seedBlobs(image).length : 0);
    // the storage side refuses Authorization, so a 200 there proves the client dropped it
    expect(front.countRequests((r) => r.server === 'storage' && r.auth !== 'none')).toBe(0);
  });

  it('copies the Docker schema2 image and the 100 MiB image byte-exact', async () => {
    for (const [repo, tag] of [
      ['acme/tool', '1.0.0'],
      ['acme/big', '1.0'],
    ]) {
      const image = seedImage(seed, repo, tag);
      const dest = join(tools.dir, `dir-${repo.replace('/', '-')}`);
      const r = await tools.skopeo([
        'copy',
        '--preserve-digests',
        '--src-tls-verify=false',
        '--src-creds',
        creds,
        `docker://${front.hostPort}/${repo}:${tag}`,
        `dir:${dest}`,
      ]);
      expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
      expect(sha256(await readFile(join(dest, 'manifest.json')))).toBe(image.digest);
      for (const blob of seedBlobs(image)) {
        const bytes = await readFile(join(dest, blob.digest.slice(7)));
        expect(createHash('sha256').update(bytes).digest('hex')).toBe(blob.digest.slice(7));
      }
    }
  });

  it('lets podman pull one architecture of the multi-arch image', async () => {
    const image = seedImage(seed, 'acme/app', 'v1.0.0');
    const arm = seedManifestFor(image, 'arm64');
    front.resetCounts();
    const pull = await tools.podman([
      'pull',
      '--tls-verify=false',
      '--creds',
      creds,
      '--arch',
      'arm64',
      `${front.hostPort}/acme/app:v1.0.0`,
    ]);
    expect({ code: pull.code, stderr: pull.stderr }).toMatchObject({ code: 0 });
    expect(pull.stdout.trim()).toBe(arm.config.digest.slice(7));
    const inspect = await tools.podman(['image', 'inspect', `${front.hostPort}/acme/app:v1.0.0`]);
    expect(inspect.code).toBe(0);
    const [info] = JSON.parse(inspect.stdout);
    expect(info.Architecture).toBe('arm64');
    expect(info.RepoDigests).toContain(`${front.hostPort}/acme/app@${image.digest}`);
    // only the arm64 layers were fetched
    const amd = seedManifestFor(image, 'amd64');
    const fetched = new Set(front.requests.filter((r) => r.kind === 'blob').map((r) => r.reference));
    for (const l of arm.layers) expect(fetched).toContain(l.digest);
    for (const l of amd.layers.filter((x) => !arm.layers.some((y) => y.digest === x.digest)))
      expect(fetched).not.toContain(l.digest);
  });
});
