import { Readable } from 'node:stream';
import { computeDigest, Digest, parseManifest } from '@gatehouse/oci';
import { BlobReply, BlobRequest, BlobSource } from './blob.source';
import { ManifestFetchTrace } from './manifest-fetch.trace';
import { artifactKind, ImageSummarySource, platformName } from './image-summary.source';
import { StoredManifest } from './manifest-store.service';
import { PullThroughService } from './pull-through.service';
import { ReferrersList, ReferrersSource } from './referrers.source';

type Fake<T, K extends keyof T> = jest.Mocked<Pick<T, K>>;

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const D = (c: string) => `sha256:${c.repeat(64)}`;

function stored(body: object): StoredManifest {
  const buf = Buffer.from(JSON.stringify(body));
  const mediaType = (body as { mediaType: string }).mediaType;
  return { digest: computeDigest(buf), mediaType, body: buf, parsed: parseManifest(buf, mediaType) };
}

const image = (config: string, configSize: number, layers: number[]) =>
  stored({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config, size: configSize },
    layers: layers.map((size, i) => ({
      mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
      digest: D(String.fromCharCode(97 + i)),
      size,
    })),
  });

/** Typed fakes of the pull path's three edges this class reads through. */
function newSource(manifests: StoredManifest[], configs: Record<string, object> = {}) {
  const byDigest = new Map(manifests.map((m) => [m.digest, m]));
  const pull: Fake<PullThroughService, 'getManifest'> = {
    getManifest: jest.fn(async (_n: string, digest: string) => byDigest.get(digest) ?? null),
  };
  const blobs: Fake<BlobSource, 'open'> = {
    open: jest.fn(async (_n: string, digest: Digest, _r: BlobRequest): Promise<BlobReply> => ({
      source: 'hit',
      size: undefined,
      length: undefined,
      body: Readable.from([Buffer.from(JSON.stringify(configs[digest] ?? {}))]),
    })),
  };
  const referrers: Fake<ReferrersSource, 'list'> = {
    list: jest.fn(async (_n: string, _s: string, _t: ManifestFetchTrace): Promise<ReferrersList> => ({
      manifests: [],
      origin: 'none',
    })),
  };
  const sut = new ImageSummarySource(
    pull as unknown as PullThroughService,
    blobs as unknown as BlobSource,
    referrers as unknown as ReferrersSource,
  );
  return { sut, pull, blobs, referrers };
}

describe('ImageSummarySource', () => {
  it("reads an index's platforms from its entries, sizes from each image, attestation manifests left out", async () => {
    const amd = image(D('1'), 100, [1000, 2000]);
    const arm = image(D('2'), 200, [3000]);
    const att = image(D('3'), 10, [10]);
    const index = stored({
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: [
        {
          mediaType: OCI_MANIFEST,
          digest: amd.digest,
          size: amd.body.length,
          platform: { os: 'linux', architecture: 'amd64' },
        },
        {
          mediaType: OCI_MANIFEST,
          digest: arm.digest,
          size: arm.body.length,
          platform: { os: 'linux', architecture: 'arm64', variant: 'v8' },
        },
        {
          mediaType: OCI_MANIFEST,
          digest: att.digest,
          size: att.body.length,
          platform: { os: 'unknown', architecture: 'unknown' },
          annotations: { 'vnd.docker.reference.type': 'attestation-manifest' },
        },
      ],
    });
    const { sut, pull, blobs } = newSource([index, amd, arm, att]);
    const summary = await sut.summarize('acme/app', index.digest);
    expect(summary).toEqual({
      digest: index.digest,
      isIndex: true,
      platforms: [
        { os: 'linux', architecture: 'amd64', size: 3100 },
        { os: 'linux', architecture: 'arm64', variant: 'v8', size: 3200 },
      ],
    });
    expect(summary!.platforms.map(platformName)).toEqual(['linux/amd64', 'linux/arm64/v8']);
    expect(blobs.open).not.toHaveBeenCalled();
    // Immutable: the second ask is answered from memory.
    pull.getManifest.mockClear();
    expect(await sut.summarize('acme/app', index.digest)).toEqual(summary);
    expect(pull.getManifest).not.toHaveBeenCalled();
  });

  it("reads a single image's platform from its config blob, through the blob store", async () => {
    const single = image(D('4'), 150, [500]);
    const { sut, blobs } = newSource([single], {
      [D('4')]: { os: 'linux', architecture: 'arm', variant: 'v7' },
    });
    expect(await sut.summarize('acme/app', single.digest)).toEqual({
      digest: single.digest,
      isIndex: false,
      platforms: [{ os: 'linux', architecture: 'arm', variant: 'v7', size: 650 }],
    });
    expect(blobs.open).toHaveBeenCalledWith(
      'acme/app',
      D('4'),
      expect.objectContaining({ declaredSize: 150 }),
    );
  });

  it('does not keep a summary with a part the upstream did not give, and answers null for no manifest', async () => {
    const single = image(D('5'), 150, [500]);
    const { sut, blobs } = newSource([single]);
    blobs.open.mockResolvedValueOnce({ source: 'miss', size: undefined, length: undefined });
    expect((await sut.summarize('acme/app', single.digest))!.platforms[0].os).toBe('unknown');
    expect((await sut.summarize('acme/app', single.digest))!.platforms[0].os).toBe('unknown');
    expect(blobs.open).toHaveBeenCalledTimes(2);
    expect(await sut.summarize('acme/app', D('9'))).toBeNull();
  });

  it('classifies the referrers of a digest from their own manifests', async () => {
    const sig = stored({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: 'application/vnd.dev.cosign.artifact.sig.v1+json', digest: D('6'), size: 2 },
      layers: [{ mediaType: 'application/vnd.dev.cosign.simplesigning.v1+json', digest: D('7'), size: 3 }],
    });
    const att = stored({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: D('6'), size: 2 },
      layers: [
        {
          mediaType: 'application/vnd.dsse.envelope.v1+json',
          digest: D('8'),
          size: 3,
          annotations: { predicateType: 'https://spdx.dev/Document' },
        },
      ],
    });
    const { sut, referrers } = newSource([sig, att]);
    referrers.list.mockResolvedValue({
      manifests: [
        {
          mediaType: OCI_MANIFEST,
          digest: sig.digest,
          size: 1,
          artifactType: 'application/vnd.dev.cosign.artifact.sig.v1+json',
        },
        { mediaType: OCI_MANIFEST, digest: att.digest, size: 1 },
      ],
      origin: 'artifact_tags',
    });
    expect(await sut.artifacts('acme/app', D('0'))).toEqual([
      {
        kind: 'signature',
        digest: sig.digest,
        artifactType: 'application/vnd.dev.cosign.artifact.sig.v1+json',
        predicateType: null,
      },
      { kind: 'sbom', digest: att.digest, artifactType: null, predicateType: 'https://spdx.dev/Document' },
    ]);
  });

  it('names artifact kinds by their media types', () => {
    expect(artifactKind('application/spdx+json', null, null)).toBe('sbom');
    expect(
      artifactKind(null, 'application/vnd.dsse.envelope.v1+json', 'https://slsa.dev/provenance/v0.2'),
    ).toBe('attestation');
    expect(artifactKind('application/vnd.cncf.notary.signature', null, null)).toBe('signature');
    expect(artifactKind('application/vnd.example.thing', 'application/octet-stream', null)).toBe('other');
  });
});
