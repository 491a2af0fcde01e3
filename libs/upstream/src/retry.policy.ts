/** Error codes of a failed or dropped connection, where a fresh attempt may well succeed. */
const RETRYABLE_ERROR_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_CONNECT_TIMEOUT',
]);

/** 501 and 505 say "never"; other 5xx are transient. */
const RETRYABLE_STATUSES = new Set([500, 502, 503, 504]);

export function errorCode(err: unknown): string | undefined {
  let e: unknown = err;
  for (let depth = 0; e && typeof e === 'object' && depth < 5; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

export interface RetryPolicyOptions {
  /** Extra attempts after the first (UPSTREAM_RETRIES). */
  retries: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
  random?: () => number;
}

/**
 * Bounded retries for idempotent requests only, on connection errors and transient 5xx only:
 * a 4xx is an answer, and a timeout waiting for headers means the upstream is already slow.
 * Exponential backoff with jitter so many gateway replicas do not retry in lockstep.
 */
export class RetryPolicy {
  readonly retries: number;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly random: () => number;

  constructor(options: RetryPolicyOptions) {
    this.retries = Math.max(0, Math.floor(options.retries));
    this.baseDelayMs = options.baseDelayMs ?? 100;
    this.maxDelayMs = options.maxDelayMs ?? 2_000;
    this.random = options.random ?? Math.random;
  }

  isIdempotent(method: string): boolean {
    return method === 'GET' || method === 'HEAD';
  }

  shouldRetryError(method: string, err: unknown, attempt: number): boolean {
    if (attempt >= this.retries || !this.isIdempotent(method)) return false;
    const code = errorCode(err);
    return code !== undefined && RETRYABLE_ERROR_CODES.has(code);
  }

  shouldRetryStatus(method: string, status: number, attempt: number): boolean {
    return attempt < this.retries && this.isIdempotent(method) && RETRYABLE_STATUSES.has(status);
  }

  /** Delay before retry number `attempt` (0-based): half fixed, half random ("equal jitter"). */
  delayMs(attempt: number): number {
    const ceiling = Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** attempt);
    return Math.round(ceiling / 2 + (ceiling / 2) * this.random());
  }
}
