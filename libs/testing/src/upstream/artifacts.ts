import { createHash } from 'node:crypto';
import { request } from 'undici';

/**
 * Pushes OCI artifacts (signatures, attestations, SBOMs, tag-schema indexes) straight into the
 * test registry behind the Forgejo front, as cosign or oras would push them to Forgejo: blobs by
 * monolithic upload, manifests by PUT. The front then serves them like any other manifest.
 */
export interface PushedManifest {
  digest: string;
  size: number;
  mediaType: string;
  body: Buffer;
}

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const OCI_EMPTY_JSON = 'application/vnd.oci.empty.v1+json';

export function sha256(data: Buffer | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

export async function pushBlob(
  registryUrl: string,
  repository: string,
  data: Buffer,
): Promise<{ digest: string; size: number }> {
  const digest = sha256(data);
  const start = await request(`${registryUrl}/v2/${repository}/blobs/uploads/`, { method: 'POST' });
  await start.body.dump();
  const location = start.headers.location;
  if (start.statusCode !== 202 || typeof location !== 'string')
    throw new Error(`blob upload to ${repository} did not start: ${start.statusCode}`);
  const url = new URL(location, registryUrl);
  url.searchParams.set('digest', digest);
  const put = await request(url.toString(), {
    method: 'PUT',
    headers: { 'content-type': 'application/octet-stream', 'content-length': String(data.length) },
    body: data,
  });
  const text = await put.body.text();
  if (put.statusCode !== 201) throw new Error(`blob ${digest} to ${repository}: ${put.statusCode} ${text}`);
  return { digest, size: data.length };
}

export async function pushManifest(
  registryUrl: string,
  repository: string,
  reference: string | null,
  manifest: object,
): Promise<PushedManifest> {
  const body = Buffer.from(JSON.stringify(manifest));
  const mediaType = (manifest as { mediaType?: string }).mediaType ?? OCI_MANIFEST;
  const digest = sha256(body);
  const res = await request(`${registryUrl}/v2/${repository}/manifests/${reference ?? digest}`, {
    method: 'PUT',
    headers: { 'content-type': mediaType },
    body,
  });
  const text = await res.body.text();
  if (res.statusCode !== 201)
    throw new Error(`manifest ${reference ?? digest} to ${repository}: ${res.statusCode} ${text}`);
  return { digest, size: body.length, mediaType, body };
}

/**
 * An artifact manifest about `subject` (OCI 1.1 shape): an empty config, one layer with
 * `payload`, the given `artifactType` (omitted: the config's media type stands for it, as older
 * cosign signatures have it) and annotations. Pushed by digest, or at `tag` when given.
 */
export async function pushArtifact(
  registryUrl: string,
  repository: string,
  options: {
    subject: { digest: string; size: number; mediaType: string };
    tag?: string;
    artifactType?: string;
    configMediaType?: string;
    layerMediaType: string;
    payload: string;
    annotations?: Record<string, string>;
    layerAnnotations?: Record<string, string>;
  },
): Promise<PushedManifest> {
  const config = Buffer.from('{}');
  const configBlob = await pushBlob(registryUrl, repository, config);
  const layer = await pushBlob(registryUrl, repository, Buffer.from(options.payload));
  return pushManifest(registryUrl, repository, options.tag ?? null, {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    ...(options.artifactType ? { artifactType: options.artifactType } : {}),
    config: { mediaType: options.configMediaType ?? OCI_EMPTY_JSON, ...configBlob },
    layers: [
      {
        mediaType: options.layerMediaType,
        ...layer,
        ...(options.layerAnnotations ? { annotations: options.layerAnnotations } : {}),
      },
    ],
    subject: options.subject,
    ...(options.annotations ? { annotations: options.annotations } : {}),
  });
}
