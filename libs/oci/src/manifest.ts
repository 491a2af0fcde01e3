import { Digest, isSupportedDigest } from './grammar';
import { isIndexMediaType, isManifestMediaType } from './media-types';
import { OciError } from './oci-error';

export interface Descriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  platform?: { os?: string; architecture?: string; variant?: string };
}

/** What a manifest makes reachable: child manifests (index) or blobs (config and layers). */
export interface ParsedManifest {
  mediaType: string;
  isIndex: boolean;
  /** Child manifests of an index. */
  manifests: Descriptor[];
  /** Config and layer blobs of an image manifest (config first). */
  blobs: Descriptor[];
}

export const MANIFEST_MAX_BYTES = 10 * 1024 * 1024;

function descriptor(value: unknown, where: string): Descriptor {
  const d = value as Partial<Descriptor> | null;
  if (!d || typeof d !== 'object' || typeof d.digest !== 'string' || !isSupportedDigest(d.digest)) {
    throw new OciError('MANIFEST_INVALID', {
      reason: 'manifest_descriptor_invalid',
      logDetail: `manifest ${where} has no valid digest`,
    });
  }
  return {
    mediaType: typeof d.mediaType === 'string' ? d.mediaType : '',
    digest: d.digest,
    size: typeof d.size === 'number' ? d.size : -1,
    ...(d.platform && typeof d.platform === 'object' ? { platform: d.platform } : {}),
  };
}

/**
 * Reads the references out of a manifest body. The media type comes from the upstream's
 * Content-Type when it names a manifest kind, else from the body (Forgejo stores the type the
 * pusher sent, and older pushers omit `mediaType` in the body).
 */
export function parseManifest(body: Buffer | string, contentType?: string): ParsedManifest {
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(typeof body === 'string' ? body : body.toString('utf8')) as Record<string, unknown>;
  } catch {
    throw new OciError('MANIFEST_INVALID', {
      reason: 'manifest_not_json',
      logDetail: 'manifest is not JSON',
    });
  }
  if (!json || typeof json !== 'object' || Array.isArray(json))
    throw new OciError('MANIFEST_INVALID', {
      reason: 'manifest_not_object',
      logDetail: 'manifest is not an object',
    });
  const declared = typeof json.mediaType === 'string' ? json.mediaType : undefined;
  const header = contentType?.split(';')[0].trim();
  let mediaType = header && isManifestMediaType(header) ? header : declared;
  if (!mediaType)
    mediaType = Array.isArray(json.manifests)
      ? 'application/vnd.oci.image.index.v1+json'
      : 'application/vnd.oci.image.manifest.v1+json';
  const isIndex = isIndexMediaType(mediaType) || (Array.isArray(json.manifests) && !json.layers);
  if (isIndex) {
    const list = Array.isArray(json.manifests) ? json.manifests : [];
    return { mediaType, isIndex, manifests: list.map((m, i) => descriptor(m, `manifests[${i}]`)), blobs: [] };
  }
  const blobs: Descriptor[] = [];
  if (json.config !== undefined) blobs.push(descriptor(json.config, 'config'));
  const layers = Array.isArray(json.layers) ? json.layers : [];
  layers.forEach((l, i) => blobs.push(descriptor(l, `layers[${i}]`)));
  return { mediaType, isIndex: false, manifests: [], blobs };
}
