import { Counter, Gauge } from 'prom-client';
import { MetricsService } from '@gatehouse/observability';

/** The events' counters in the one Prometheus registry. */
export class EventsMetrics {
  readonly produced: Counter<'type'>;
  readonly delivered: Counter<'sink'>;
  readonly retried: Counter<'sink'>;
  readonly deadLettered: Counter<'sink'>;
  readonly outboxAge: Gauge;
  readonly wakeups: Counter<'cause'>;
  readonly listening: Gauge;

  constructor(metrics: MetricsService) {
    this.produced = metrics.counter('gatehouse_events_produced_total', 'Events written to the outbox', [
      'type',
    ]);
    this.delivered = metrics.counter('gatehouse_events_delivered_total', 'Event deliveries acknowledged', [
      'sink',
    ]);
    this.retried = metrics.counter(
      'gatehouse_events_retried_total',
      'Event delivery attempts that failed and wait for a retry',
      ['sink'],
    );
    this.deadLettered = metrics.counter(
      'gatehouse_events_dead_lettered_total',
      'Webhook deliveries given up (retries exhausted, or the subscription disabled)',
      ['sink'],
    );
    this.outboxAge = metrics.gauge(
      'gatehouse_events_outbox_oldest_age_seconds',
      'Age of the oldest event not yet delivered to every sink',
    );
    this.wakeups = metrics.counter(
      'gatehouse_events_worker_wakeups_total',
      'What woke the event worker: a NOTIFY from an outbox write, or its poll',
      ['cause'],
    );
    this.listening = metrics.gauge(
      'gatehouse_events_worker_listening',
      '1 while the event worker LISTENs for wake-ups (else it polls every 250 ms)',
    );
  }
}
