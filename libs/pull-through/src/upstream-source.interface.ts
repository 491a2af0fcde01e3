import type { Digest, UpstreamBlob } from '@gatehouse/oci';

/** A manifest as fetched from upstream, digest already verified by the client. */
export interface FetchedManifest {
  body: Buffer;
  mediaType: string;
  digest: string;
}

export interface ManifestHead {
  mediaType: string;
  digest: string;
  size: number;
}

/**
 * What the pull path needs from the upstream registry (the port). `UpstreamRegistrySource`
 * adapts the upstream client to it; the specs use an in-memory upstream, so this lib is reasoned
 * about and tested without HTTP.
 * `null` means "does not exist upstream"; every other failure is thrown.
 */
export interface UpstreamSource {
  getManifest(name: string, reference: string, signal?: AbortSignal): Promise<FetchedManifest | null>;
  headManifest(name: string, reference: string, signal?: AbortSignal): Promise<ManifestHead | null>;
  getBlob(
    name: string,
    digest: Digest,
    options: {
      range?: { start: number; end?: number };
      expectedSize?: number;
      signal?: AbortSignal;
      /** false only for a caller that verifies the digest itself (the blob cache's fill). */
      verifyDigest?: boolean;
    },
  ): Promise<UpstreamBlob | null>;
  /** `size` is -1 when upstream did not announce it. */
  headBlob(name: string, digest: Digest, signal?: AbortSignal): Promise<{ size: number } | null>;
  listTags(name: string, signal?: AbortSignal): Promise<string[] | null>;
  /**
   * The upstream's own referrers API (`GET /v2/<name>/referrers/<digest>`, the index bytes), for
   * an upstream that has one; absent or `null` when it has none (Forgejo: a 404 with an empty
   * body), and `ReferrersSource` falls back to the tag schema.
   */
  listReferrers?(name: string, digest: string, signal?: AbortSignal): Promise<Buffer | null>;
}

export const UPSTREAM_SOURCE = Symbol('UPSTREAM_SOURCE');
