import type { Readable } from 'node:stream';

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

export interface UpstreamBlob {
  status: 200 | 206;
  body: Readable;
  /** Size of the whole blob. */
  size: number;
  /** For 206: the range actually served. */
  contentRange?: string;
}

/**
 * What the pull-through layer needs from the upstream registry. The upstream client satisfies
 * it through a small adapter, so this lib can be tested against the real client and reasoned
 * about without HTTP.
 * `null` means "does not exist upstream"; every other failure is thrown.
 */
export interface UpstreamSource {
  getManifest(name: string, reference: string, signal?: AbortSignal): Promise<FetchedManifest | null>;
  headManifest(name: string, reference: string, signal?: AbortSignal): Promise<ManifestHead | null>;
  getBlob(
    name: string,
    digest: string,
    options: { range?: { start: number; end?: number }; expectedSize?: number; signal?: AbortSignal },
  ): Promise<UpstreamBlob | null>;
  headBlob(name: string, digest: string, signal?: AbortSignal): Promise<{ size: number } | null>;
  listTags(name: string, signal?: AbortSignal): Promise<string[] | null>;
}

export const UPSTREAM_SOURCE = Symbol('UPSTREAM_SOURCE');
