/**
 * The OCI 1.1 tag schema (distribution-spec "Referrers tag schema") and cosign's tags: the
 * artifacts of a subject `sha256:<hex>` live at tags named after it. This is the one grammar of
 * those tags; whether one is admitted is decided in libs/entitlements (`EntitlementService`).
 *
 * | tag                   | what it holds                                      |
 * |-----------------------|----------------------------------------------------|
 * | `sha256-<hex>`        | the tag-schema index of the subject's referrers     |
 * | `sha256-<hex>.sig`    | signatures (cosign, containers/image sigstore)      |
 * | `sha256-<hex>.att`    | attestations (in-toto, e.g. SLSA provenance)        |
 * | `sha256-<hex>.sbom`   | an SBOM                                             |
 */
export type ArtifactKind = 'referrers' | 'signature' | 'attestation' | 'sbom';

export interface ArtifactTag {
  /** The tag itself (as parsed). */
  tag: string;
  /** The digest whose artifact this is, `sha256:<hex>`. */
  subject: string;
  kind: ArtifactKind;
}

const ARTIFACT_TAG = /^sha256-([a-f0-9]{64})(?:\.(sig|att|sbom))?$/;

const KIND_OF_SUFFIX: Record<string, ArtifactKind> = {
  sig: 'signature',
  att: 'attestation',
  sbom: 'sbom',
};

/** The suffixes whose manifests are referrers of the subject, in the order they are listed. */
export const ARTIFACT_SUFFIXES = ['.sig', '.att', '.sbom'] as const;

/**
 * An artifact tag, or null for any other tag. Give the canonical form (`canonicalTag`): the
 * digest's hex is lower case by the digest grammar, so `SHA256-…` is an artifact tag only where
 * the upstream folds case.
 */
export function parseArtifactTag(tag: string): ArtifactTag | null {
  const m = ARTIFACT_TAG.exec(tag);
  if (!m) return null;
  return { tag, subject: `sha256:${m[1]}`, kind: m[2] ? KIND_OF_SUFFIX[m[2]] : 'referrers' };
}

/** The tag-schema tag of a sha256 digest (`sha256:<hex>` → `sha256-<hex>`), or null for another algorithm. */
export function artifactTagOf(
  digest: string,
  suffix: '' | (typeof ARTIFACT_SUFFIXES)[number] = '',
): string | null {
  const m = /^sha256:([a-f0-9]{64})$/.exec(digest);
  return m ? `sha256-${m[1]}${suffix}` : null;
}

/** "signature of v1.0.0": how support names what an artifact tag is. */
export function describeArtifact(kind: ArtifactKind, of: string): string {
  switch (kind) {
    case 'referrers':
      return `referrers index of ${of}`;
    case 'signature':
      return `signature of ${of}`;
    case 'attestation':
      return `attestation of ${of}`;
    case 'sbom':
      return `SBOM of ${of}`;
  }
}
