import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createContainerToolsSandbox, ContainerToolsSandbox } from './clients';
import { digestOf, probe } from './http-probe';
import { ALL_MANIFEST_MEDIA_TYPES, MediaTypes } from './image-builder';
import { startRegistry, RegistryProcess } from './registry-process';
import {
  BIG_LAYER_SIZE,
  prepareSeededStorage,
  seedBlobs,
  seedImage,
  seedLayersOnlyIn,
  SeedInfo,
} from './seed';

const sha256 = (text: string): string => 'sha256:' + createHash('sha256').update(text).digest('hex');

describe('test registry process', () => {
  let seed: SeedInfo;
  let open: RegistryProcess;
  let locked: RegistryProcess;
  let tools: ContainerToolsSandbox;
  const creds = { username: 'gatehouse', password: 's3cret-pw' };

  beforeAll(async () => {
    seed = await prepareSeededStorage();
    [open, locked, tools] = await Promise.all([
      startRegistry({ copyFrom: seed.storageDir }),
      startRegistry({ copyFrom: seed.storageDir, htpasswd: creds }),
      createContainerToolsSandbox(),
    ]);
  });

  afterAll(async () => {
    await Promise.all([open?.stop(), locked?.stop(), tools?.cleanup()]);
  });

  it('records the seed set the integration tests rely on', () => {
    expect(seed.tags).toEqual({
      'acme/app': ['latest', 'v1.0.0', 'v1.1.0', 'v2.0.0-rc.1'],
      'acme/big': ['1.0'],
      'acme/tool': ['1.0.0'],
      'other/secret': ['1.0'],
    });
    const v100 = seedImage(seed, 'acme/app', 'v1.0.0');
    const v110 = seedImage(seed, 'acme/app', 'v1.1.0');
    expect(v100.mediaType).toBe(MediaTypes.ociIndex);
    expect(v100.manifests.map((m) => m.platform.architecture)).toEqual(['amd64', 'arm64']);
    expect(v110.digest).not.toBe(v100.digest);
    expect(seedImage(seed, 'acme/app', 'latest').digest).toBe(v110.digest);
    // one base layer shared by both versions, and layers only 1.1.0 has
    expect(v110.manifests[0].layers[0].digest).toBe(v100.manifests[0].layers[0].digest);
    expect(seedLayersOnlyIn(seed, 'acme/app:v1.1.0', 'acme/app:v1.0.0').length).toBeGreaterThanOrEqual(1);
    expect(seedImage(seed, 'acme/tool', '1.0.0').mediaType).toBe(MediaTypes.dockerManifest);
    const big = seedImage(seed, 'acme/big', '1.0').manifests[0].layers[0];
    expect(big.mediaType).toBe(MediaTypes.ociLayerTar);
    expect(big.size).toBeGreaterThanOrEqual(BIG_LAYER_SIZE);
  });

  it('serves every seeded manifest with the recorded digest to skopeo inspect', async () => {
    for (const [ref, image] of Object.entries(seed.images)) {
      const r = await tools.skopeo([
        'inspect',
        '--raw',
        '--tls-verify=false',
        `docker://${open.hostPort}/${ref}`,
      ]);
      expect({ ref, code: r.code, stderr: r.stderr }).toEqual({ ref, code: 0, stderr: '' });
      expect(sha256(r.stdout)).toBe(image.digest);
      expect(JSON.parse(r.stdout).mediaType).toBe(image.mediaType);
    }
  });

  it('copies a multi-arch index with skopeo copy --all, keeping every digest', async () => {
    const image = seedImage(seed, 'acme/app', 'v1.1.0');
    const dest = join(tools.dir, 'copy-open');
    const r = await tools.skopeo([
      'copy',
      '--all',
      '--preserve-digests',
      '--src-tls-verify=false',
      `docker://${open.hostPort}/acme/app:v1.1.0`,
      `oci:${dest}:v1.1.0`,
    ]);
    expect(r.code).toBe(0);
    const index = JSON.parse(await readFile(join(dest, 'index.json'), 'utf8'));
    expect(index.manifests[0].digest).toBe(image.digest);
    for (const blob of [...seedBlobs(image), ...image.manifests]) {
      const bytes = await readFile(join(dest, 'blobs', 'sha256', blob.digest.slice(7)));
      expect(bytes.length).toBe(blob.size);
    }
  });

  it('requires the htpasswd credentials when started with them', async () => {
    const ref = `docker://${locked.hostPort}/acme/tool:1.0.0`;
    const anonymous = await tools.skopeo(['inspect', '--raw', '--tls-verify=false', '--no-creds', ref]);
    expect(anonymous.code).not.toBe(0);
    expect(anonymous.stderr).toMatch(/unauthorized|authentication required/i);
    const wrong = await tools.skopeo([
      'inspect',
      '--raw',
      '--tls-verify=false',
      '--creds',
      'gatehouse:nope',
      ref,
    ]);
    expect(wrong.code).not.toBe(0);
    const right = await tools.skopeo([
      'inspect',
      '--raw',
      '--tls-verify=false',
      '--creds',
      `${creds.username}:${creds.password}`,
      ref,
    ]);
    expect(right.code).toBe(0);
    expect(sha256(right.stdout)).toBe(seedImage(seed, 'acme/tool', '1.0.0').digest);
  });

  it('streams the 100 MiB layer byte-exact', async () => {
    const layer = seedImage(seed, 'acme/big', '1.0').manifests[0].layers[0];
    const got = await digestOf(`${open.url}/v2/acme/big/blobs/${layer.digest}`);
    expect(got).toMatchObject({ status: 200, digest: layer.digest, size: layer.size });
  });

  it('gives each instance its own storage: a moved tag does not leak into the seed or other instances', async () => {
    const other = seedImage(seed, 'other/secret', '1.0');
    const r = await tools.skopeo([
      'copy',
      '--preserve-digests',
      '--src-tls-verify=false',
      '--dest-tls-verify=false',
      `docker://${open.hostPort}/other/secret:1.0`,
      `docker://${open.hostPort}/acme/app:latest`,
    ]);
    expect(r.code).toBe(0);
    const accept = ALL_MANIFEST_MEDIA_TYPES.join(', ');
    const moved = await probe(`${open.url}/v2/acme/app/manifests/latest`, {
      method: 'HEAD',
      headers: { accept },
    });
    expect(moved.headers['docker-content-digest']).toBe(other.digest);
    const untouched = await probe(`${locked.url}/v2/acme/app/manifests/latest`, {
      method: 'HEAD',
      headers: {
        accept,
        authorization: 'Basic ' + Buffer.from(`${creds.username}:${creds.password}`).toString('base64'),
      },
    });
    expect(untouched.headers['docker-content-digest']).toBe(seedImage(seed, 'acme/app', 'latest').digest);
    const seedLink = await readFile(
      join(seed.storageDir, 'docker/registry/v2/repositories/acme/app/_manifests/tags/latest/current/link'),
      'utf8',
    );
    expect(seedLink).toBe(seedImage(seed, 'acme/app', 'latest').digest);
  });

  it('can be killed and restarted on the same port with the same storage', async () => {
    const reg = await startRegistry({ copyFrom: seed.storageDir });
    try {
      await reg.kill();
      expect(reg.isRunning()).toBe(false);
      await expect(probe(`${reg.url}/v2/`)).rejects.toThrow();
      await reg.restart();
      const res = await probe(`${reg.url}/v2/acme/tool/manifests/1.0.0`, {
        headers: { accept: MediaTypes.dockerManifest },
      });
      expect(res.status).toBe(200);
      expect(res.headers['docker-content-digest']).toBe(seedImage(seed, 'acme/tool', '1.0.0').digest);
    } finally {
      await reg.stop();
    }
  });

  it('explains how to install the registry when the binary is missing', async () => {
    await expect(startRegistry({ binary: '/nonexistent/docker-registry' })).rejects.toThrow(
      /apt-get install docker-registry/,
    );
  });
});
