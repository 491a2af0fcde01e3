import { Counter, Gauge } from 'prom-client';
import { MetricsService } from '@gatehouse/observability';

/** The audit writer's counters and gauges, registered once and shared by its parts. */
export class AuditMetrics {
  readonly dropped: Counter;
  readonly written: Counter;
  readonly spooled: Counter;
  readonly torn: Counter;
  readonly depth: Gauge;
  readonly spoolBytes: Gauge;

  constructor(metrics: MetricsService) {
    this.dropped = metrics.counter(
      'gatehouse_audit_events_dropped_total',
      'Audit events lost: memory queue full and the disk spool full or unavailable, or an event the database rejects',
    );
    this.written = metrics.counter(
      'gatehouse_audit_events_written_total',
      'Audit events stored in the database',
    );
    this.spooled = metrics.counter(
      'gatehouse_audit_events_spooled_total',
      'Audit events written to the disk spool because the database was unreachable or the memory queue full',
    );
    this.torn = metrics.counter(
      'gatehouse_audit_spool_torn_lines_total',
      'Spool lines skipped at replay because a crash cut them short',
    );
    this.depth = metrics.gauge('gatehouse_audit_queue_depth', 'Audit events waiting in memory to be stored');
    this.spoolBytes = metrics.gauge(
      'gatehouse_audit_spool_bytes',
      'Bytes of audit events waiting in the disk spool',
    );
  }
}
