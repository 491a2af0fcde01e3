import { Clock } from '@gatehouse/observability';
import { UpstreamAuthError } from './upstream.error';

/** The first wait after a refusal; each further refusal doubles it up to CREDENTIAL_BACKOFF_MAX_MS. */
export const CREDENTIAL_BACKOFF_MS = 20_000;
/**
 * The longest wait: attempts at 0, 20, 60, 140 and 260 s, then every 120 s, are five in an upstream
 * Gatehouse's default failed-login window (10 per username and address in 300 s), so a gateway refused
 * for hours never locks its own address out and a new key works at the restart.
 */
export const CREDENTIAL_BACKOFF_MAX_MS = 120_000;
/** How long a refusal explains a later 429 (an upstream that locks out failed logins). */
const REFUSAL_MEMORY_MS = 10 * 60_000;

/**
 * After the upstream refuses this gateway's own credentials (401 to Basic), the next requests
 * fail at once with the same operator error instead of reaching the upstream, until the window
 * passes: probes and retries must not burn the failed-login budget the upstream keeps for this
 * gateway's username and address. Each refusal in a row doubles the window (20 s up to 120 s); a 429
 * after a refusal (the upstream's lock-out) counts as one. Any accepted credentialed answer clears it.
 */
export class CredentialBackoff {
  private until = 0;
  private refusedAt: number | null = null;
  private error: UpstreamAuthError | null = null;
  private refusals = 0;

  constructor(
    private readonly clock: Clock,
    private readonly windowMs = CREDENTIAL_BACKOFF_MS,
    private readonly maxWindowMs = CREDENTIAL_BACKOFF_MAX_MS,
  ) {}

  /** Records a refusal: the window, doubled for each refusal since the last accepted answer, starts now. */
  refused(): void {
    this.refusals++;
    this.refusedAt = this.clock.now();
    this.until = this.refusedAt + this.currentWindowMs();
  }

  /** A 429 soon after a refusal is the upstream's failed-login lock-out: hold back as for a refusal. */
  limited(): void {
    if (this.recentlyRefused()) this.refused();
  }

  /** The wait after the latest refusal. */
  currentWindowMs(): number {
    const doublings = Math.min(Math.max(this.refusals - 1, 0), 16);
    return Math.min(this.windowMs * 2 ** doublings, this.maxWindowMs);
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
    this.refusals = 0;
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
