import { DataSource } from 'typeorm';
import { EventsMetrics } from './events.metrics';

export interface EventsStatus {
  ok: boolean;
  message: string;
  /** Oldest event not yet fanned out to the webhooks (the worker's own backlog). */
  undispatchedSeconds: number;
  /** Oldest event not yet acknowledged by JetStream. */
  natsBacklogSeconds: number;
  /** Oldest webhook delivery still pending (a receiver that is down). */
  webhookBacklogSeconds: number;
  deadLetters: number;
}

/**
 * The outbox's age, for /readyz and the gauge. Readiness fails only when the worker's own
 * fan-out falls behind (the database or every worker is stuck); a receiver or NATS that is
 * down is reported here and in the metrics but never takes the gateway out of service.
 */
export class EventsStatusProbe {
  constructor(
    private readonly db: DataSource,
    private readonly metrics: EventsMetrics,
    private readonly maxAgeSeconds: number,
  ) {}

  async check(): Promise<EventsStatus> {
    const [row] = (await this.db.query(
      `SELECT
         COALESCE(EXTRACT(EPOCH FROM now() - (SELECT min(available_at) FROM event_outbox WHERE dispatched_at IS NULL)), 0) AS undispatched,
         COALESCE(EXTRACT(EPOCH FROM now() - (SELECT min(created_at) FROM event_outbox WHERE nats_pending)), 0) AS nats,
         COALESCE(EXTRACT(EPOCH FROM now() - (SELECT min(created_at) FROM webhook_deliveries WHERE status = 'pending')), 0) AS webhooks,
         (SELECT count(*) FROM webhook_deliveries WHERE status = 'dead') AS dead`,
    )) as Array<Record<string, string>>;
    const undispatchedSeconds = Math.max(0, Math.round(Number(row.undispatched)));
    const natsBacklogSeconds = Math.max(0, Math.round(Number(row.nats)));
    const webhookBacklogSeconds = Math.max(0, Math.round(Number(row.webhooks)));
    this.metrics.outboxAge.set(Math.max(undispatchedSeconds, natsBacklogSeconds, webhookBacklogSeconds));
    const ok = undispatchedSeconds <= this.maxAgeSeconds;
    return {
      ok,
      message: ok
        ? 'the event outbox is being delivered'
        : `the oldest undelivered event is ${undispatchedSeconds} s old (EVENTS_READY_MAX_AGE_SECONDS=${this.maxAgeSeconds}): no event worker is making progress`,
      undispatchedSeconds,
      natsBacklogSeconds,
      webhookBacklogSeconds,
      deadLetters: Number(row.dead),
    };
  }
}
