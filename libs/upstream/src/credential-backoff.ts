import { Clock } from '@gatehouse/observability';
import { UpstreamAuthError } from './upstream.error';

/** One credentialed attempt per window at most after a refusal: three a minute. */
export const CREDENTIAL_BACKOFF_MS = 20_000;
/** How long a refusal explains a later 429 (an upstream that locks out failed logins). */
const REFUSAL_MEMORY_MS = 10 * 60_000;

/**
 * After the upstream refuses this gateway's own credentials (401 to Basic), the next requests
 * fail at once with the same operator error instead of reaching the upstream, until the window
 * passes: probes and retries must not burn the failed-login budget the upstream keeps for this
 * gateway's username and address. Any accepted credentialed answer clears it.
 */
export class CredentialBackoff {
  private until = 0;
  private refusedAt: number | null = null;
  private error: UpstreamAuthError | null = null;

  constructor(
    private readonly clock: Clock,
    private readonly windowMs = CREDENTIAL_BACKOFF_MS,
  ) {}

  /** Records a refusal: the window starts now. */
  refused(): void {
    this.refusedAt = this.clock.now();
    this.until = this.refusedAt + this.windowMs;
  }

  /** Keeps the refusal's operator error to replay while the window lasts; true the first time. */
  remember(err: UpstreamAuthError): boolean {
    if (this.refusedAt === null || this.clock.now() >= this.until) return false;
    const first = this.error === null;
    this.error = err;
    return first;
  }

  accepted(): void {
    this.until = 0;
    this.refusedAt = null;
    this.error = null;
  }

  /** The error to throw instead of sending, while backing off. */
  blocked(request: string): UpstreamAuthError | null {
    const now = this.clock.now();
    if (now >= this.until) return null;
    const seconds = Math.ceil((this.until - now) / 1000);
    return new UpstreamAuthError(
      'token_invalid',
      `${this.error?.message ?? "The upstream refused this gateway's credentials (401)."} ` +
        `Backing off: ${request} was not sent; the next attempt upstream is in ${seconds} s.`,
      { request, upstreamStatus: 401 },
    );
  }

  /** True when this gateway's credentials were refused recently (explains a 429). */
  recentlyRefused(): boolean {
    return this.refusedAt !== null && this.clock.now() - this.refusedAt < REFUSAL_MEMORY_MS;
  }
}
