import { LRUCache } from 'lru-cache';
import { Digest } from '@gatehouse/oci';
import { BlobSource } from './blob.source';
import { ManifestFetchTrace } from './manifest-fetch.trace';
import { PullThroughService } from './pull-through.service';
import { ReferrersSource } from './referrers.source';

/** One platform of an image: where it runs, and what pulling it costs (config + layers). */
export interface ImagePlatform {
  os: string;
  architecture: string;
  variant?: string;
  /** Bytes of the config and layer blobs, as their descriptors declare them. */
  size: number;
}

/** What a manifest digest is: a single image or an index of platform images. */
export interface ImageSummary {
  digest: string;
  isIndex: boolean;
  /** Platforms of the index's images (attestation manifests left out), or the image's own. */
  platforms: ImagePlatform[];
}

/** What a referrer of an image is, as cosign and the OCI referrers API name them. */
export type ImageArtifactKind = 'signature' | 'attestation' | 'sbom' | 'other';

export interface ImageArtifact {
  kind: ImageArtifactKind;
  digest: string;
  /** The referrer's artifact type (or its config's media type, as older cosign manifests have). */
  artifactType: string | null;
  /** An attestation's in-toto predicate type, when its layer names one (cosign's `predicateType`). */
  predicateType: string | null;
}

const SBOM = /spdx|cyclonedx|syft|sbom/i;

/** The kind of a referrer, from its artifact type and its first layer's media type and annotations. */
export function artifactKind(
  artifactType: string | null,
  layerMediaType: string | null,
  predicate: string | null,
): ImageArtifactKind {
  const types = `${artifactType ?? ''} ${layerMediaType ?? ''}`;
  if (/dsse|in-toto|intoto|attestation/i.test(types) || predicate)
    return SBOM.test(predicate ?? '') ? 'sbom' : 'attestation';
  if (SBOM.test(types)) return 'sbom';
  if (/cosign\.simplesigning|sigstore|signature|notary/i.test(types)) return 'signature';
  return 'other';
}

/** A config blob larger than this is not read for its platform (real ones are a few KiB). */
const CONFIG_MAX_BYTES = 1024 * 1024;

interface Json {
  [key: string]: unknown;
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v ? v : undefined);

function json(body: Buffer): Json | null {
  try {
    const value = JSON.parse(body.toString('utf8')) as unknown;
    return value && typeof value === 'object' && !Array.isArray(value) ? (value as Json) : null;
  } catch {
    return null;
  }
}

/**
 * Platforms and sizes of an image by digest, read through the pull path itself: manifests from
 * `PullThroughService` (memory, disk, then upstream once) and a single image's config blob
 * through `BlobSource` (the one blob store: cached like any pulled blob). Summaries are of
 * immutable digests, so they are kept (LRU-bounded) for good.
 *
 * The caller must have established that the digest is reachable for the member (it resolved an
 * admitted tag to it): this class fetches the manifest's children and config.
 */
export class ImageSummarySource {
  private readonly summaries: LRUCache<string, ImageSummary>;

  constructor(
    private readonly pull: PullThroughService,
    private readonly blobs: BlobSource,
    private readonly referrers: ReferrersSource,
    options: { maxEntries: number } = { maxEntries: 10_000 },
  ) {
    this.summaries = new LRUCache({ max: options.maxEntries });
  }

  /** Null when the upstream has no manifest of that digest. */
  async summarize(name: string, digest: string): Promise<ImageSummary | null> {
    const known = this.summaries.get(digest);
    if (known) return known;
    const manifest = await this.pull.getManifest(name, digest);
    if (!manifest) return null;
    let platforms: ImagePlatform[];
    // Kept only when every part was read: a missing child or config is asked again next time.
    let complete = true;
    if (manifest.parsed.isIndex) {
      const entries = (json(manifest.body)?.manifests as unknown[] | undefined) ?? [];
      platforms = [];
      for (const entry of entries) {
        const d = (entry ?? {}) as Json;
        const annotations = (d.annotations ?? {}) as Json;
        // buildx's provenance and SBOM manifests ride in the index as platform unknown/unknown.
        if (annotations['vnd.docker.reference.type'] === 'attestation-manifest') continue;
        const child = str(d.digest) ? await this.pull.getManifest(name, d.digest as string) : null;
        if (!child) {
          complete = false;
          continue;
        }
        const platform = (d.platform ?? {}) as Json;
        platforms.push({
          os: str(platform.os) ?? 'unknown',
          architecture: str(platform.architecture) ?? 'unknown',
          ...(str(platform.variant) ? { variant: str(platform.variant) } : {}),
          size: child.parsed.blobs.reduce((sum, b) => sum + Math.max(0, b.size), 0),
        });
      }
    } else {
      const config = manifest.parsed.blobs[0];
      const facts = config ? await this.config(name, config.digest as Digest, config.size) : null;
      complete = facts !== null;
      platforms = [
        {
          os: str(facts?.os) ?? 'unknown',
          architecture: str(facts?.architecture) ?? 'unknown',
          ...(str(facts?.variant) ? { variant: str(facts?.variant) } : {}),
          size: manifest.parsed.blobs.reduce((sum, b) => sum + Math.max(0, b.size), 0),
        },
      ];
    }
    const summary = { digest, isIndex: manifest.parsed.isIndex, platforms };
    if (complete) this.summaries.set(digest, summary);
    return summary;
  }

  /**
   * The signatures, attestations and SBOMs that refer to a digest: the referrers list the
   * registry serves (`ReferrersSource`: upstream API, tag-schema index or cosign's `.sig`,
   * `.att`, `.sbom` tags; cached for the tag TTL), each classified from its own manifest.
   */
  async artifacts(name: string, digest: string): Promise<ImageArtifact[]> {
    const trace = new ManifestFetchTrace();
    const list = await this.referrers.list(name, digest, trace);
    const out: ImageArtifact[] = [];
    for (const d of list.manifests) {
      const manifest = await this.pull.getManifest(name, d.digest, trace);
      const body = manifest ? json(manifest.body) : null;
      const layer = ((body?.layers as unknown[] | undefined)?.[0] ?? {}) as Json;
      const layerAnnotations = (layer.annotations ?? {}) as Json;
      const predicateType = str(layerAnnotations.predicateType) ?? null;
      const artifactType = d.artifactType ?? null;
      out.push({
        kind: artifactKind(artifactType, str(layer.mediaType) ?? null, predicateType),
        digest: d.digest,
        artifactType,
        predicateType,
      });
    }
    return out;
  }

  /** The image config, read through the blob store (a hit, or the one fill of that digest). */
  private async config(name: string, digest: Digest, declaredSize: number): Promise<Json | null> {
    if (declaredSize > CONFIG_MAX_BYTES) return null;
    const reply = await this.blobs.open(name, digest, {
      declaredSize: declaredSize >= 0 ? declaredSize : undefined,
      signal: new AbortController().signal,
    });
    if (!reply.body) return null;
    const chunks: Buffer[] = [];
    let length = 0;
    for await (const chunk of reply.body as AsyncIterable<Buffer>) {
      length += chunk.length;
      if (length > CONFIG_MAX_BYTES) {
        reply.body.destroy();
        return null;
      }
      chunks.push(chunk);
    }
    return json(Buffer.concat(chunks));
  }
}

/** `linux/arm64/v8` */
export function platformName(p: Pick<ImagePlatform, 'os' | 'architecture' | 'variant'>): string {
  return [p.os, p.architecture, p.variant].filter(Boolean).join('/');
}
