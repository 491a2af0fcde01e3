/**
 * The error table: one row per code, code → HTTP status → default message. Handlers throw
 * OciError with a code; one filter serialises it as {"errors":[{"code","message","detail"}]}.
 * The status lives here and nowhere else: no handler picks or overrides a status number.
 *
 * The distribution-spec codes come first (with distribution's PAGINATION_NUMBER_INVALID and
 * RANGE_INVALID), then the gateway's own for what the spec has no code for.
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
  PAGINATION_NUMBER_INVALID: { status: 400, message: 'invalid number of results requested' },
  RANGE_INVALID: { status: 416, message: 'requested range not satisfiable' },
  // The gateway's own: requests that never name a registry object.
  REQUEST_INVALID: { status: 400, message: 'malformed request' },
  REQUEST_TIMEOUT: { status: 408, message: 'request not received in time' },
  REQUEST_TOO_LARGE: { status: 413, message: 'request too large' },
  HEADERS_TOO_LARGE: { status: 431, message: 'request headers too large' },
  UPSTREAM_ERROR: { status: 502, message: 'the upstream registry could not serve this request' },
  UNAVAILABLE: { status: 503, message: 'the registry is temporarily unavailable' },
  INTERNAL_ERROR: { status: 500, message: 'internal error' },
} as const;

export type OciErrorCode = keyof typeof OCI_ERROR_CODES;

export interface OciErrorOptions {
  /** Member-facing; defaults to the table's message. */
  message?: string;
  /** Member-facing `detail` of the envelope. */
  detail?: unknown;
  /** Extra response headers (WWW-Authenticate, Retry-After, ...). */
  headers?: Record<string, string>;
  /**
   * The true reason as a stable snake_case code (`tag_not_entitled`, `upstream_unreachable`):
   * the audit row's `reason` column, searched by `gatehouse audit --reason`. Never sent to the
   * client, never prose.
   */
  reason?: string;
  /** Operator prose (what failed, with which object), for the log line only. */
  logDetail?: string;
  cause?: unknown;
}

/** What an audit `reason` looks like: a stable snake_case code. */
export const REASON_CODE_REGEXP = /^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$/;

export class OciError extends Error {
  readonly status: number;
  readonly detail: unknown;
  readonly headers: Record<string, string>;
  readonly reason: string | undefined;
  readonly logDetail: string | undefined;

  constructor(
    readonly code: OciErrorCode,
    options: OciErrorOptions = {},
  ) {
    // A refusal (4xx) is an answer, not a fault: no stack is captured for it (at a thousand
    // refusals a second the capture cost 2 % of the event loop). A 5xx keeps its stack.
    const limit = Error.stackTraceLimit;
    if (OCI_ERROR_CODES[code].status < 500) Error.stackTraceLimit = 0;
    super(options.message ?? OCI_ERROR_CODES[code].message, { cause: options.cause });
    Error.stackTraceLimit = limit;
    this.name = 'OciError';
    this.status = OCI_ERROR_CODES[code].status;
    this.detail = options.detail;
    this.headers = options.headers ?? {};
    this.reason = options.reason;
    this.logDetail = options.logDetail;
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
 * form. `toOciError()` converts them, so no handler maps errors by hand.
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

/**
 * Recognises errors that cannot carry `toOciError()` themselves (a database driver's, say) and
 * gives their member-facing form, or null. The lib that knows the error exports its translator.
 */
export type OciErrorTranslator = (err: unknown) => OciError | null;

/**
 * THE conversion of any error into its member-facing form: an OciError as it is, a
 * ConvertibleToOciError by its own `toOciError()`, then the translators in order. Null for an
 * error whose meaning is unknown (the caller answers 500 INTERNAL_ERROR naming the request id).
 */
export function toOciError(err: unknown, translators: readonly OciErrorTranslator[] = []): OciError | null {
  if (err instanceof OciError) return err;
  if (isConvertibleToOciError(err)) return err.toOciError();
  for (const translate of translators) {
    const oci = translate(err);
    if (oci) return oci;
  }
  return null;
}

/**
 * The code of a bare HTTP status (a framework's own exceptions: unknown route, bad form), by
 * the table: the response keeps the code's status, so a status without a row of its own
 * becomes the nearest one (4xx → REQUEST_INVALID, 5xx → INTERNAL_ERROR).
 */
export function ociCodeForHttpStatus(status: number): OciErrorCode {
  switch (status) {
    case 401:
      return 'UNAUTHORIZED';
    case 403:
      return 'DENIED';
    case 404:
      return 'NAME_UNKNOWN';
    case 405:
      return 'UNSUPPORTED';
    case 408:
      return 'REQUEST_TIMEOUT';
    case 413:
      return 'REQUEST_TOO_LARGE';
    case 429:
      return 'TOOMANYREQUESTS';
    case 431:
      return 'HEADERS_TOO_LARGE';
    default:
      return status >= 500 ? 'INTERNAL_ERROR' : 'REQUEST_INVALID';
  }
}
