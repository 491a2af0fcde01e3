import { Client } from 'pg';
import { EntityManager } from 'typeorm';
import { AppLogger } from '@gatehouse/observability';

/** The channel a transaction that writes outbox rows (or makes deliveries due) notifies on commit. */
export const EVENTS_WAKE_CHANNEL = 'gatehouse_events';

/** Tells every replica's worker there is work: delivered when the caller's transaction commits. */
export async function notifyEventsWork(manager: Pick<EntityManager, 'query'>): Promise<void> {
  await manager.query(`SELECT pg_notify('${EVENTS_WAKE_CHANNEL}', '')`);
}

/** What wakes the worker (typed so tests can hand it a fake). */
export interface EventsWakeup {
  /** Starts listening: `onWake` on each notification and once each time listening (re)starts. */
  start(onWake: () => void): void;
  /** Whether notifications arrive now (the worker polls less often while they do). */
  readonly listening: boolean;
  close(): Promise<void>;
}

/** Reconnection attempts back off from 0.25 s doubling up to this (with jitter). */
const MAX_RECONNECT_DELAY_MS = 5_000;
const FIRST_RECONNECT_DELAY_MS = 250;

/**
 * One dedicated pg connection per replica that LISTENs on `EVENTS_WAKE_CHANNEL`. Lost (database
 * restart, backend terminated), it reconnects with backoff and wakes the worker once it listens
 * again, since notifications sent meanwhile are gone; the worker polls often while it is down.
 */
export class PgEventsWakeup implements EventsWakeup {
  static readonly APPLICATION_NAME = 'gatehouse-events-wakeup';
  private client: Client | null = null;
  private onWake: () => void = () => undefined;
  private stopped = false;
  private retryTimer: NodeJS.Timeout | null = null;
  private delayMs = FIRST_RECONNECT_DELAY_MS;
  private up = false;
  private lastWarn = 0;

  constructor(
    private readonly url: string | undefined,
    private readonly logger: AppLogger,
  ) {}

  get listening(): boolean {
    return this.up;
  }

  start(onWake: () => void): void {
    this.onWake = onWake;
    void this.connect();
  }

  async close(): Promise<void> {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    const c = this.client;
    this.client = null;
    this.up = false;
    if (c) await c.end().catch(() => undefined);
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    const client = new Client({
      connectionString: this.url,
      connectionTimeoutMillis: 5_000,
      application_name: PgEventsWakeup.APPLICATION_NAME,
    });
    client.on('error', () => this.lost(client));
    client.on('end', () => this.lost(client));
    client.on('notification', (n) => {
      if (n.channel === EVENTS_WAKE_CHANNEL) this.onWake();
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${EVENTS_WAKE_CHANNEL}`);
    } catch (err) {
      await client.end().catch(() => undefined);
      this.warn(err, 'cannot listen for event wake-ups; polling meanwhile, retrying');
      this.schedule();
      return;
    }
    if (this.stopped) {
      await client.end().catch(() => undefined);
      return;
    }
    this.client = client;
    this.up = true;
    this.delayMs = FIRST_RECONNECT_DELAY_MS;
    // Whatever was notified before LISTEN took effect is unknown: one claim round now.
    this.onWake();
  }

  private lost(client: Client): void {
    if (this.client !== client) return;
    this.client = null;
    this.up = false;
    client.end().catch(() => undefined);
    if (this.stopped) return;
    this.warn(null, 'lost the event wake-up connection; polling meanwhile, reconnecting');
    this.schedule();
  }

  private warn(err: unknown, message: string): void {
    if (Date.now() - this.lastWarn < 60_000) return;
    this.lastWarn = Date.now();
    this.logger.warn({ err }, message);
  }

  private schedule(): void {
    if (this.stopped || this.retryTimer) return;
    const delay = this.delayMs / 2 + Math.random() * (this.delayMs / 2);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      void this.connect();
    }, delay);
    this.retryTimer.unref();
    this.delayMs = Math.min(this.delayMs * 2, MAX_RECONNECT_DELAY_MS);
  }
}
