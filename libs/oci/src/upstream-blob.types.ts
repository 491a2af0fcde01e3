import type { Readable } from 'node:stream';

/**
 * A blob body as an upstream registry answered it: the one shape the upstream client returns,
 * the pull path's upstream port hands on and the blob cache's fill reads.
 */
export interface UpstreamBlob {
  /** 200: the whole blob. 206: the requested range. */
  status: 200 | 206;
  body: Readable;
  /** Bytes in `body` as upstream announced them (Content-Length); undefined when it did not say. */
  size: number | undefined;
  /** `bytes a-b/total` for a 206. */
  contentRange?: string;
}

/**
 * A response body that counts what it handed to its destination itself, so the audit need not
 * put a counting stream between it and the socket (the committed-blob fast path).
 */
export interface SelfCountingBody {
  readonly bytesDelivered: number;
}

export function isSelfCounting(body: unknown): body is SelfCountingBody {
  return typeof (body as Partial<SelfCountingBody> | null)?.bytesDelivered === 'number';
}
