import { Injectable, OnApplicationBootstrap, OnApplicationShutdown, Optional } from '@nestjs/common';
import { Counter } from 'prom-client';
import { GatewayConfig } from '@gatehouse/config';
import { AppLogger, Clock, MetricsService } from '@gatehouse/observability';
import { AuditRetentionService } from './audit-retention.service';

/** First run shortly after start (not during it), then hourly. */
export const AUDIT_PRUNE_FIRST_DELAY_MS = 60_000;
export const AUDIT_PRUNE_INTERVAL_MS = 60 * 60_000;

/**
 * The gateway's scheduled prune: every hour, rows older than AUDIT_RETENTION_DAYS are deleted in
 * batches of 5 000 with a short pause between them. AUDIT_RETENTION_DAYS=0 turns it off.
 */
@Injectable()
export class AuditRetentionScheduler implements OnApplicationBootstrap, OnApplicationShutdown {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private stopping = false;
  private readonly pruned: Counter;

  constructor(
    private readonly retention: AuditRetentionService,
    private readonly config: GatewayConfig,
    private readonly logger: AppLogger,
    metrics: MetricsService,
    @Optional() private readonly clock: Clock = new Clock(),
  ) {
    this.pruned = metrics.counter(
      'gatehouse_audit_events_pruned_total',
      'Audit rows deleted because they were older than AUDIT_RETENTION_DAYS',
    );
  }

  onApplicationBootstrap(): void {
    if (this.config.audit.retentionDays <= 0) return;
    this.arm(AUDIT_PRUNE_FIRST_DELAY_MS);
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopping = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.running;
  }

  /** One scheduled run (also what the timer calls). */
  runOnce(now = this.clock.date()): Promise<void> {
    if (this.running) return this.running;
    const cutoff = new Date(now.getTime() - this.config.audit.retentionDays * 86_400_000);
    this.running = this.retention
      .prune(cutoff, { batchSize: 5_000, pauseMs: 100, shouldStop: () => this.stopping })
      .then(
        (r) => {
          this.pruned.inc(r.deleted);
          if (r.deleted > 0)
            this.logger.info(
              { deleted: r.deleted, batches: r.batches, olderThan: cutoff.toISOString() },
              'pruned audit events past AUDIT_RETENTION_DAYS',
            );
        },
        (e: unknown) => this.logger.warn({ err: e }, 'audit prune failed; retrying at the next interval'),
      )
      .finally(() => {
        this.running = null;
      });
    return this.running;
  }

  private arm(delayMs: number): void {
    if (this.stopping) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.runOnce().finally(() => this.arm(AUDIT_PRUNE_INTERVAL_MS));
    }, delayMs);
    this.timer.unref();
  }
}
