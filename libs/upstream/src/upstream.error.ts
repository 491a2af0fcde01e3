import { OciError } from '@gatehouse/oci';

/** The `reason` label of gatehouse_upstream_failures_total and of the audit row. */
export type UpstreamFailureReason =
  | 'not_configured'
  | 'token_invalid'
  | 'token_missing_scope'
  | 'token_public_only'
  | 'owner_unknown'
  | 'not_found'
  | 'unreachable'
  | 'tls'
  | 'dns'
  | 'timeout'
  | 'server_error'
  | 'digest_mismatch'
  | 'truncated'
  | 'protocol';

export interface UpstreamErrorDetails {
  /** HTTP status the upstream answered, when it answered. */
  upstreamStatus?: number;
  /** `GET /v2/acme/app/manifests/v1`, never with a query string (presigned URLs carry secrets). */
  request?: string;
  cause?: unknown;
}

/**
 * An upstream failure. `message` is the operator line (cause and fix, naming the variable to
 * change, never a secret); the member only ever sees `toOciError()`'s generic envelope.
 */
export abstract class UpstreamError extends Error {
  readonly upstreamStatus: number | undefined;
  readonly request: string | undefined;

  protected constructor(
    readonly reason: UpstreamFailureReason,
    operatorMessage: string,
    details: UpstreamErrorDetails = {},
  ) {
    super(operatorMessage, { cause: details.cause });
    this.upstreamStatus = details.upstreamStatus;
    this.request = details.request;
  }

  /** The member-facing error: generic message, true reason kept for logs and the audit row. */
  abstract toOciError(): OciError;

  protected generic(code: 'UPSTREAM_ERROR' | 'UNAVAILABLE'): OciError {
    return new OciError(code, { reason: `upstream_${this.reason}`, cause: this });
  }
}

/** The upstream refused the service credentials or the token's access to an owner. */
export class UpstreamAuthError extends UpstreamError {
  constructor(
    reason: 'token_invalid' | 'token_missing_scope' | 'token_public_only' | 'owner_unknown',
    message: string,
    details?: UpstreamErrorDetails,
  ) {
    super(reason, message, details);
    this.name = 'UpstreamAuthError';
  }

  toOciError(): OciError {
    return this.generic('UPSTREAM_ERROR');
  }
}

/** Nothing answered: not configured, connection refused, DNS, TLS, timeouts. */
export class UpstreamUnavailableError extends UpstreamError {
  constructor(
    reason: 'not_configured' | 'unreachable' | 'tls' | 'dns' | 'timeout',
    message: string,
    details?: UpstreamErrorDetails,
  ) {
    super(reason, message, details);
    this.name = 'UpstreamUnavailableError';
  }

  toOciError(): OciError {
    return this.generic('UNAVAILABLE');
  }
}

/** The upstream answered with a 5xx (or 429). A gateway/proxy 502-504 in front of it means "down". */
export class UpstreamServerError extends UpstreamError {
  constructor(message: string, details?: UpstreamErrorDetails) {
    super('server_error', message, details);
    this.name = 'UpstreamServerError';
  }

  toOciError(): OciError {
    const s = this.upstreamStatus;
    return this.generic(s === 429 || s === 502 || s === 503 || s === 504 ? 'UNAVAILABLE' : 'UPSTREAM_ERROR');
  }
}

/** Bytes that are not what was asked for: wrong digest, or a body cut short. Never cached. */
export class UpstreamIntegrityError extends UpstreamError {
  constructor(reason: 'digest_mismatch' | 'truncated', message: string, details?: UpstreamErrorDetails) {
    super(reason, message, details);
    this.name = 'UpstreamIntegrityError';
  }

  toOciError(): OciError {
    return this.generic('UPSTREAM_ERROR');
  }
}

/** An answer this client cannot use (unexpected status, malformed JSON, oversized manifest...). */
export class UpstreamProtocolError extends UpstreamError {
  constructor(message: string, details?: UpstreamErrorDetails) {
    super('protocol', message, details);
    this.name = 'UpstreamProtocolError';
  }

  toOciError(): OciError {
    return this.generic('UPSTREAM_ERROR');
  }
}
