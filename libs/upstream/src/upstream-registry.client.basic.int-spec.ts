import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  prepareSeededStorage,
  RegistryProcess,
  SeedInfo,
  seedImage,
  seedManifestFor,
  startRegistry,
} from '@gatehouse/testing/upstream';
import { parseDigest } from '@gatehouse/oci';
import { UpstreamError } from './upstream.error';
import { UpstreamBlob, UpstreamManifest } from './upstream.types';
import { drain, GENERIC_502, LINES, sha256, useClientHarness } from './upstream-registry.client.fixture';

// The client against a CNCF distribution registry with Basic credentials (htpasswd). The Forgejo
// front (Bearer): upstream-registry.client.bearer-auth and .bearer-transfer.int-spec.ts.

const harness = useClientHarness();

describe('UpstreamRegistryClient against the distribution registry (Basic)', () => {
  let seed: SeedInfo;
  let registry: RegistryProcess;
  const creds = { username: 'gatehouse', password: 'registry-password-1' };

  beforeAll(async () => {
    seed = await prepareSeededStorage();
    registry = await startRegistry({ copyFrom: seed.storageDir, htpasswd: creds });
  });

  afterAll(async () => {
    await registry?.stop();
  });

  it('pulls manifests, blobs with Range and tags with Basic credentials', async () => {
    const h = harness(registry.url, creds.password, { username: creds.username });
    const image = seedImage(seed, 'acme/app', 'v1.1.0');
    const m = (await h.client.getManifest('acme/app', 'v1.1.0')) as UpstreamManifest;
    expect(m).toMatchObject({ found: true, digest: image.digest, mediaType: image.mediaType });
    const config = seedManifestFor(image, 'amd64').config;
    const blob = (await h.client.getBlob('acme/app', parseDigest(config.digest), {
      expectedSize: config.size,
    })) as UpstreamBlob;
    const bytes = await drain(blob);
    expect(sha256(bytes)).toBe(config.digest);
    const part = (await h.client.getBlob('acme/app', parseDigest(config.digest), {
      range: 'bytes=1-4',
    })) as UpstreamBlob;
    expect(part.status).toBe(206);
    expect((await drain(part)).equals(bytes.subarray(1, 5))).toBe(true);
    expect(await h.client.listAllTags('acme/app', { pageSize: 3 })).toMatchObject({
      found: true,
      tags: seed.tags['acme/app'],
    });
    expect(await h.health.check()).toMatchObject({ ok: true });
    expect(h.errorLines()).toEqual([]);
  });

  it('wrong credentials: token_invalid with the Basic line, generic envelope, readiness false', async () => {
    const h = harness(registry.url, 'not-the-password', { username: creds.username });
    const err = (await h.client.getManifest('acme/app', 'v1.1.0').catch((e: unknown) => e)) as UpstreamError;
    expect(err.reason).toBe('token_invalid');
    expect(err.toOciError().toEnvelope()).toEqual(GENERIC_502);
    expect(h.errorLines()[0].msg).toBe(LINES.basicRefused);
    expect(await h.failures('token_invalid')).toBe(1);
    // The readiness probe right after is held back (no second failed login upstream) and says why.
    const health = await h.health.check();
    expect(health).toMatchObject({ ok: false, reason: 'token_invalid' });
    expect(health.message).toBe(
      `${LINES.basicRefused} Backing off: GET /v2/ was not sent; the next attempt upstream is in 20 s.`,
    );
    expect(h.raw()).not.toContain('not-the-password');
  });

  it('an upstream killed mid-blob surfaces as an error', async () => {
    const own = await startRegistry({ copyFrom: seed.storageDir, htpasswd: creds });
    try {
      const h = harness(own.url, creds.password, { username: creds.username, retries: 0 });
      const layer = seedManifestFor(seedImage(seed, 'acme/big', '1.0'), 'amd64').layers[0];
      const blob = (await h.client.getBlob('acme/big', parseDigest(layer.digest))) as UpstreamBlob;
      const err = (await drain(blob, () => own.kill()).catch((e: unknown) => e)) as UpstreamError;
      expect(err).toBeInstanceOf(UpstreamError);
      expect(err.reason).toBe('truncated');
      expect(await h.failures('truncated')).toBe(1);
    } finally {
      await own.stop();
    }
  });

  it('rejects a blob whose stored bytes do not match its digest', async () => {
    const own = await startRegistry({ copyFrom: seed.storageDir, htpasswd: creds });
    try {
      const config = seedManifestFor(seedImage(seed, 'acme/tool', '1.0.0'), 'amd64').config;
      const hex = config.digest.slice('sha256:'.length);
      const data = join(own.storageDir, 'docker/registry/v2/blobs/sha256', hex.slice(0, 2), hex, 'data');
      // The data file is hard-linked to the shared seed: replace the link, never write through it.
      const original = await readFile(data);
      const corrupt = Buffer.from(original);
      corrupt[0] ^= 0xff;
      await rm(data);
      await writeFile(data, corrupt);

      const h = harness(own.url, creds.password, { username: creds.username });
      const blob = (await h.client.getBlob('acme/tool', parseDigest(config.digest))) as UpstreamBlob;
      await expect(drain(blob)).rejects.toMatchObject({ reason: 'digest_mismatch' });
      expect(await h.failures('digest_mismatch')).toBe(1);
      expect(String(h.errorLines()[0].msg)).toContain(`acme/tool blob ${config.digest} as sha256:`);
    } finally {
      await own.stop();
    }
  });
});
