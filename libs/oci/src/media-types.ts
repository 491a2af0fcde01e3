export const MEDIA_TYPES = {
  OCI_MANIFEST: 'application/vnd.oci.image.manifest.v1+json',
  OCI_INDEX: 'application/vnd.oci.image.index.v1+json',
  DOCKER_MANIFEST: 'application/vnd.docker.distribution.manifest.v2+json',
  DOCKER_MANIFEST_LIST: 'application/vnd.docker.distribution.manifest.list.v2+json',
} as const;

/** What we ask upstream for: every manifest kind we can walk, indexes first. */
export const MANIFEST_ACCEPT = [
  MEDIA_TYPES.OCI_INDEX,
  MEDIA_TYPES.DOCKER_MANIFEST_LIST,
  MEDIA_TYPES.OCI_MANIFEST,
  MEDIA_TYPES.DOCKER_MANIFEST,
].join(', ');

export function isIndexMediaType(mediaType: string): boolean {
  return mediaType === MEDIA_TYPES.OCI_INDEX || mediaType === MEDIA_TYPES.DOCKER_MANIFEST_LIST;
}

export function isManifestMediaType(mediaType: string): boolean {
  return (
    mediaType === MEDIA_TYPES.OCI_MANIFEST ||
    mediaType === MEDIA_TYPES.DOCKER_MANIFEST ||
    isIndexMediaType(mediaType)
  );
}
