import { MEDIA_TYPES } from './media-types';

/**
 * OCI distribution-spec 1.1 "Listing referrers": the answer to `GET /v2/<name>/referrers/<digest>`
 * is an image index whose `manifests` are descriptors of the manifests that name the digest as
 * their subject, each with the manifest's `artifactType` (or, when it has none, its config's
 * media type) and its `annotations`.
 */
export interface ReferrerDescriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
}

export interface ReferrersIndex {
  schemaVersion: 2;
  mediaType: typeof MEDIA_TYPES.OCI_INDEX;
  manifests: ReferrerDescriptor[];
}

/** The header naming the filters a referrers answer applied (spec: `OCI-Filters-Applied`). */
export const OCI_FILTERS_APPLIED = 'OCI-Filters-Applied';

export function referrersIndex(manifests: ReferrerDescriptor[]): ReferrersIndex {
  return { schemaVersion: 2, mediaType: MEDIA_TYPES.OCI_INDEX, manifests };
}

function stringRecord(value: unknown): Record<string, string> | undefined {
  if (!value || typeof value !== 'object' || Array.isArray(value)) return undefined;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(value)) if (typeof v === 'string') out[k] = v;
  return Object.keys(out).length > 0 ? out : undefined;
}

function parseObject(body: Buffer): Record<string, unknown> | null {
  try {
    const json = JSON.parse(body.toString('utf8')) as unknown;
    return json && typeof json === 'object' && !Array.isArray(json)
      ? (json as Record<string, unknown>)
      : null;
  } catch {
    return null;
  }
}

/**
 * The descriptor of a referrer manifest, from its bytes: `artifactType` is the manifest's, else
 * its config's media type (the spec's rule for image manifests); `annotations` are copied.
 */
export function referrerDescriptor(manifest: {
  digest: string;
  mediaType: string;
  body: Buffer;
}): ReferrerDescriptor {
  const json = parseObject(manifest.body) ?? {};
  const config = json.config as { mediaType?: unknown } | undefined;
  const artifactType =
    typeof json.artifactType === 'string'
      ? json.artifactType
      : typeof config?.mediaType === 'string'
        ? config.mediaType
        : undefined;
  const annotations = stringRecord(json.annotations);
  return {
    mediaType: manifest.mediaType,
    digest: manifest.digest,
    size: manifest.body.length,
    ...(artifactType ? { artifactType } : {}),
    ...(annotations ? { annotations } : {}),
  };
}

/**
 * The descriptors an index lists (a tag-schema index, or an upstream's referrers answer), with
 * the fields the spec names; entries without a digest are dropped.
 */
export function referrerDescriptorsOfIndex(body: Buffer): ReferrerDescriptor[] {
  const json = parseObject(body);
  const list = Array.isArray(json?.manifests) ? (json.manifests as unknown[]) : [];
  const out: ReferrerDescriptor[] = [];
  for (const entry of list) {
    const d = entry as Record<string, unknown> | null;
    if (!d || typeof d.digest !== 'string' || typeof d.mediaType !== 'string') continue;
    const annotations = stringRecord(d.annotations);
    out.push({
      mediaType: d.mediaType,
      digest: d.digest,
      size: typeof d.size === 'number' ? d.size : -1,
      ...(typeof d.artifactType === 'string' ? { artifactType: d.artifactType } : {}),
      ...(annotations ? { annotations } : {}),
    });
  }
  return out;
}

/**
 * The digest a manifest names in its `subject` field, or null when it has none (cosign's
 * tag-scheme signatures have none: their tag names the subject).
 */
export function manifestSubject(body: Buffer): string | null {
  const subject = parseObject(body)?.subject as { digest?: unknown } | undefined;
  return typeof subject?.digest === 'string' ? subject.digest : null;
}

/** The `artifactType` filter of the spec: only descriptors of that artifact type. */
export function filterReferrers(
  list: ReferrerDescriptor[],
  artifactType: string | undefined,
): ReferrerDescriptor[] {
  return artifactType ? list.filter((d) => d.artifactType === artifactType) : list;
}
