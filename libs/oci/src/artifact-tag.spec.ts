import { artifactTagOf, describeArtifact, parseArtifactTag } from './artifact-tag';
import { filterReferrers, referrerDescriptor, referrerDescriptorsOfIndex } from './referrers';

const hex = 'ab'.repeat(32);

describe('artifact tags (the OCI 1.1 tag schema and cosign suffixes)', () => {
  it.each([
    [`sha256-${hex}`, 'referrers'],
    [`sha256-${hex}.sig`, 'signature'],
    [`sha256-${hex}.att`, 'attestation'],
    [`sha256-${hex}.sbom`, 'sbom'],
  ])('%s is the %s of sha256:<hex>', (tag, kind) => {
    expect(parseArtifactTag(tag)).toEqual({ tag, subject: `sha256:${hex}`, kind });
  });

  it.each([
    'v1.0.0',
    `sha256-${hex}.sig.bak`,
    `sha256-${hex}.SIG`,
    `sha256-${hex.toUpperCase()}.sig`,
    `sha256-${hex.slice(2)}.sig`,
    `sha512-${hex}${hex}.sig`,
    `sha256-${hex}.pem`,
    `xsha256-${hex}.sig`,
  ])('%s is no artifact tag', (tag) => {
    expect(parseArtifactTag(tag)).toBeNull();
  });

  it('names the tags of a sha256 digest, and none of another algorithm', () => {
    expect(artifactTagOf(`sha256:${hex}`)).toBe(`sha256-${hex}`);
    expect(artifactTagOf(`sha256:${hex}`, '.att')).toBe(`sha256-${hex}.att`);
    expect(artifactTagOf(`sha512:${hex}${hex}`)).toBeNull();
    expect(describeArtifact('signature', 'v1.0.0')).toBe('signature of v1.0.0');
  });
});

describe('referrer descriptors', () => {
  const body = (o: object) => Buffer.from(JSON.stringify(o));

  it("takes the manifest's artifactType, else its config's media type, and its annotations", () => {
    const withType = body({
      artifactType: 'application/spdx+json',
      config: { mediaType: 'application/vnd.oci.empty.v1+json' },
      annotations: { a: 'b', n: 1 },
    });
    expect(
      referrerDescriptor({
        digest: 'sha256:x',
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        body: withType,
      }),
    ).toEqual({
      digest: 'sha256:x',
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      size: withType.length,
      artifactType: 'application/spdx+json',
      annotations: { a: 'b' },
    });
    const cosign = body({ config: { mediaType: 'application/vnd.dev.cosign.artifact.sig.v1+json' } });
    expect(referrerDescriptor({ digest: 'sha256:y', mediaType: 'm', body: cosign }).artifactType).toBe(
      'application/vnd.dev.cosign.artifact.sig.v1+json',
    );
  });

  it('reads an index, dropping entries without digest or media type, and filters by artifactType', () => {
    const list = referrerDescriptorsOfIndex(
      body({
        manifests: [
          { mediaType: 'm', digest: 'sha256:a', size: 1, artifactType: 't1' },
          { mediaType: 'm', digest: 'sha256:b', size: 2, artifactType: 't2', annotations: { k: 'v' } },
          { digest: 'sha256:c' },
        ],
      }),
    );
    expect(list.map((d) => d.digest)).toEqual(['sha256:a', 'sha256:b']);
    expect(filterReferrers(list, 't2')).toEqual([
      { mediaType: 'm', digest: 'sha256:b', size: 2, artifactType: 't2', annotations: { k: 'v' } },
    ]);
    expect(filterReferrers(list, undefined)).toBe(list);
    expect(referrerDescriptorsOfIndex(Buffer.from('not json'))).toEqual([]);
  });
});
