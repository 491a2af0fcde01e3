import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { computeDigest, DigestMismatchError, DigestVerifier } from './digest';
import { parseManifest } from './manifest';
import { MEDIA_TYPES } from './media-types';

const d = (c: string) => 'sha256:' + c.repeat(64);

describe('parseManifest', () => {
  it('reads the children of an index', () => {
    const body = JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA_TYPES.OCI_INDEX,
      manifests: [
        {
          mediaType: MEDIA_TYPES.OCI_MANIFEST,
          digest: d('1'),
          size: 10,
          platform: { os: 'linux', architecture: 'amd64' },
        },
        {
          mediaType: MEDIA_TYPES.OCI_MANIFEST,
          digest: d('2'),
          size: 11,
          platform: { os: 'linux', architecture: 'arm64' },
        },
      ],
    });
    const m = parseManifest(body);
    expect(m.isIndex).toBe(true);
    expect(m.manifests.map((x) => x.digest)).toEqual([d('1'), d('2')]);
    expect(m.blobs).toEqual([]);
  });

  it('reads config and layers of an image manifest, preferring the Content-Type', () => {
    const body = JSON.stringify({
      schemaVersion: 2,
      config: { digest: d('c'), size: 5 },
      layers: [
        { digest: d('a'), size: 1 },
        { digest: d('b'), size: 2 },
      ],
    });
    const m = parseManifest(body, `${MEDIA_TYPES.DOCKER_MANIFEST}; charset=utf-8`);
    expect(m.mediaType).toBe(MEDIA_TYPES.DOCKER_MANIFEST);
    expect(m.blobs.map((x) => x.digest)).toEqual([d('c'), d('a'), d('b')]);
  });

  it.each(['not json', '[]', JSON.stringify({ layers: [{ digest: '../etc/passwd' }] })])(
    'refuses %j',
    (body) => {
      expect(() => parseManifest(body)).toThrow(/manifest/);
    },
  );
});

describe('DigestVerifier', () => {
  const data = Buffer.from('hello world');
  const good = computeDigest(data);

  it('passes bytes through when digest and size match', async () => {
    const chunks: Buffer[] = [];
    const v = new DigestVerifier(good, data.length);
    v.on('data', (c: Buffer) => chunks.push(c));
    await pipeline(Readable.from([data.subarray(0, 3), data.subarray(3)]), v);
    expect(Buffer.concat(chunks)).toEqual(data);
  });

  it('fails on a truncated body', async () => {
    const v = new DigestVerifier(good, data.length);
    v.resume();
    await expect(pipeline(Readable.from([data.subarray(0, 5)]), v)).rejects.toBeInstanceOf(
      DigestMismatchError,
    );
  });

  it('fails on different content of the same size', async () => {
    const v = new DigestVerifier(good, data.length);
    v.resume();
    await expect(pipeline(Readable.from([Buffer.from('hello WORLD')]), v)).rejects.toThrow(/digest mismatch/);
  });

  it('fails as soon as the body grows past the expected size', async () => {
    const v = new DigestVerifier(good, 3);
    v.resume();
    await expect(pipeline(Readable.from([data]), v)).rejects.toThrow(/size mismatch/);
  });
});
