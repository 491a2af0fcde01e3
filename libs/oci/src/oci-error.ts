/**
 * The OCI distribution error catalogue: one table of code → HTTP status → default message.
 * Handlers throw OciError with a code; one filter serialises it as
 * {"errors":[{"code","message","detail"}]}. Nothing else picks a status number.
 */
export const OCI_ERROR_CODES = {
  BLOB_UNKNOWN: { status: 404, message: 'blob unknown to registry' },
  BLOB_UPLOAD_INVALID: { status: 400, message: 'blob upload invalid' },
  BLOB_UPLOAD_UNKNOWN: { status: 404, message: 'blob upload unknown to registry' },
  DIGEST_INVALID: { status: 400, message: 'provided digest did not match uploaded content' },
  MANIFEST_BLOB_UNKNOWN: {
    status: 404,
    message: 'manifest references a manifest or blob unknown to registry',
  },
  MANIFEST_INVALID: { status: 400, message: 'manifest invalid' },
  MANIFEST_UNKNOWN: { status: 404, message: 'manifest unknown to registry' },
  NAME_INVALID: { status: 400, message: 'invalid repository name' },
  NAME_UNKNOWN: { status: 404, message: 'repository name not known to registry' },
  SIZE_INVALID: { status: 400, message: 'provided length did not match content length' },
  UNAUTHORIZED: { status: 401, message: 'authentication required' },
  DENIED: { status: 403, message: 'requested access to the resource is denied' },
  UNSUPPORTED: { status: 405, message: 'the operation is unsupported' },
  TOOMANYREQUESTS: { status: 429, message: 'too many requests' },
  RANGE_INVALID: { status: 416, message: 'requested range not satisfiable' },
  UPSTREAM_ERROR: { status: 502, message: 'the upstream registry could not serve this request' },
  UNAVAILABLE: { status: 503, message: 'the registry is temporarily unavailable' },
  INTERNAL_ERROR: { status: 500, message: 'internal error' },
} as const;

export type OciErrorCode = keyof typeof OCI_ERROR_CODES;

export interface OciErrorOptions {
  message?: string;
  detail?: unknown;
  /** Overrides the table's status (e.g. 413 for an oversized manifest). */
  status?: number;
  /** Extra response headers (WWW-Authenticate, Retry-After, ...). */
  headers?: Record<string, string>;
  /** The true reason, for logs and the audit row; never sent to the client. */
  reason?: string;
  cause?: unknown;
}

export class OciError extends Error {
  readonly status: number;
  readonly detail: unknown;
  readonly headers: Record<string, string>;
  readonly reason: string | undefined;

  constructor(
    readonly code: OciErrorCode,
    options: OciErrorOptions = {},
  ) {
    super(options.message ?? OCI_ERROR_CODES[code].message, { cause: options.cause });
    this.name = 'OciError';
    this.status = options.status ?? OCI_ERROR_CODES[code].status;
    this.detail = options.detail;
    this.headers = options.headers ?? {};
    this.reason = options.reason;
  }

  toEnvelope(): { errors: Array<{ code: string; message: string; detail?: unknown }> } {
    const entry: { code: string; message: string; detail?: unknown } = {
      code: this.code,
      message: this.message,
    };
    if (this.detail !== undefined) entry.detail = this.detail;
    return { errors: [entry] };
  }
}

/**
 * Domain errors of other libs (upstream failures, cache failures) that know their member-facing
 * form. The exception filter converts them, so no handler maps errors by hand.
 */
export interface ConvertibleToOciError {
  toOciError(): OciError;
}

export function isConvertibleToOciError(err: unknown): err is ConvertibleToOciError {
  return (
    typeof err === 'object' &&
    err !== null &&
    !(err instanceof OciError) &&
    typeof (err as { toOciError?: unknown }).toOciError === 'function'
  );
}
