import { AppLogger, Clock } from '@gatehouse/observability';

export interface AuditOutageOptions {
  retryMinMs: number;
  retryMaxMs: number;
  /** Named in the warning, so the operator knows where the events go. */
  spoolDir: string | null;
}

/**
 * Whether the database is believed down, and when to probe it again: each failure doubles the
 * backoff (between retryMinMs and retryMaxMs); a success ends the outage and logs the recovery
 * once. Time comes from the injected Clock.
 */
export class AuditOutageDetector {
  private backoff = 0;
  /** While in an outage, batches go to the spool until this time passes. */
  private until = 0;
  private down = false;
  /** Set by a failure, cleared (and logged) by the next successful write. */
  private degraded = false;

  constructor(
    private readonly clock: Clock,
    private readonly logger: AppLogger,
    private readonly options: AuditOutageOptions,
  ) {}

  /** The database is believed down (writes go to the spool). */
  get inOutage(): boolean {
    return this.down;
  }

  get backoffMs(): number {
    return this.backoff;
  }

  /** Not in an outage, or its backoff has passed: try the database. */
  get mayProbe(): boolean {
    return !this.down || this.clock.now() >= this.until;
  }

  /** Milliseconds until the next probe is due (0 when due). */
  get msUntilProbe(): number {
    return Math.max(0, this.until - this.clock.now());
  }

  /** An explicit flush probes now instead of waiting out the backoff. */
  probeNow(): void {
    this.until = 0;
  }

  /** A write or replay failed: back off (doubling) and warn (once per outage, or with the error). */
  failed(pending: number, err?: unknown): void {
    this.backoff = Math.min(this.options.retryMaxMs, Math.max(this.options.retryMinMs, this.backoff * 2));
    this.until = this.clock.now() + this.backoff;
    if (!this.degraded || err) {
      this.logger.warn(
        { err, pending, retryInMs: this.backoff, spool: this.options.spoolDir },
        'audit events could not be stored; spooling them to disk and retrying',
      );
    }
    this.down = true;
    this.degraded = true;
  }

  /** A write succeeded: the outage (if any) is over. */
  recovered(pending: number): void {
    if (this.degraded) this.logger.info({ pending }, 'audit writes recovered');
    this.degraded = false;
    this.down = false;
    this.backoff = 0;
  }

  /** Nothing to replay: the database is not known to be down any more (the backoff stays). */
  cleared(): void {
    this.down = false;
  }
}
