import type { UpstreamBlob } from '@gatehouse/oci';
import type { UpstreamError, UpstreamFailureReason } from './upstream.error';

/** The public shapes of the upstream client's answers and options. */

export interface UpstreamClientOptions {
  /** Backoff base for retries; tests shorten it. */
  retryBaseDelayMs?: number;
  retryMaxDelayMs?: number;
  /** Largest tags/list or _catalog page accepted. */
  maxListBytes?: number;
}

export interface UpstreamManifest {
  found: true;
  /** Absent for HEAD. */
  body?: Buffer;
  mediaType: string;
  digest: string;
  size: number;
}

export interface UpstreamNotFound {
  found: false;
  /** The upstream's OCI code (MANIFEST_UNKNOWN, BLOB_UNKNOWN, NAME_UNKNOWN) when it sent one. */
  code?: string;
}

/** The blob type lives in libs/oci (one shape for the client, the pull path and the cache). */
export type { UpstreamBlob };

export interface UpstreamBlobHead {
  found: true;
  size: number | undefined;
  digest: string;
}

export interface UpstreamTagPage {
  found: true;
  name: string;
  tags: string[];
  /** Parameters of the `rel="next"` page, when the upstream announced one. */
  next?: { last?: string; n?: number };
}

export type AccessCheckResult =
  | { ok: true; authScheme: 'bearer' | 'basic' | 'none'; probedRepository?: string }
  | { ok: false; reason: UpstreamFailureReason; message: string; error: UpstreamError };
