import type { Readable } from 'node:stream';
import type { AuditCache } from '@gatehouse/audit';
import type { RegistryPrincipal } from '@gatehouse/auth';

/** What a registry decision answers; the gateway's reply writer only writes it. */
export interface RegistryReply {
  status: number;
  /** A list is sent as one header line per item (`Warning`). */
  headers: Record<string, string | string[]>;
  /** JSON object, bytes, or a stream (blobs). Absent for HEAD and 304. */
  body?: object | Buffer | Readable;
  /** A blob handed to nginx (X-Accel-Redirect): the bytes it will send, for the audit row. */
  offloadedBytes?: number;
}

/** The parts of a /v2/ request the decisions read, as the controller parsed them. */
export interface RegistryRequest {
  method: 'GET' | 'HEAD';
  query: Record<string, string | undefined>;
  ifNoneMatch?: string;
  range?: string;
  /** Aborted when the client goes away. */
  signal: AbortSignal;
}

/** Facts gathered while handling one request, written as one audit row at the end. */
export interface AuditDraft {
  action: string;
  startedAt: number;
  principal?: RegistryPrincipal;
  repository?: string;
  reference?: string;
  digest?: string;
  cache?: AuditCache;
  details?: Record<string, unknown>;
}
