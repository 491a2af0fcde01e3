import { EntityManager } from 'typeorm';
import { PgChannelListener } from '@gatehouse/database';
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
 * One dedicated pg connection per replica that LISTENs on `EVENTS_WAKE_CHANNEL` (libs/database's
 * `PgChannelListener`). Lost (database restart, backend terminated), it reconnects with backoff
 * and wakes the worker once it listens again, since notifications sent meanwhile are gone; the
 * worker polls often while it is down.
 */
export class PgEventsWakeup implements EventsWakeup {
  static readonly APPLICATION_NAME = 'gatehouse-events-wakeup';
  private onWake: () => void = () => undefined;
  private lastWarn = 0;
  private readonly listener: PgChannelListener;

  constructor(url: string | undefined, logger: AppLogger) {
    this.listener = new PgChannelListener(
      {
        url,
        channel: EVENTS_WAKE_CHANNEL,
        applicationName: PgEventsWakeup.APPLICATION_NAME,
        firstDelayMs: FIRST_RECONNECT_DELAY_MS,
        maxDelayMs: MAX_RECONNECT_DELAY_MS,
        jitter: true,
      },
      {
        notified: () => this.onWake(),
        // Whatever was notified before LISTEN took effect is unknown: one claim round now.
        listening: () => this.onWake(),
        lost: (err, phase) => {
          if (Date.now() - this.lastWarn < 60_000) return;
          this.lastWarn = Date.now();
          logger.warn(
            { err },
            phase === 'connect'
              ? 'cannot listen for event wake-ups; polling meanwhile, retrying'
              : 'lost the event wake-up connection; polling meanwhile, reconnecting',
          );
        },
      },
    );
  }

  get listening(): boolean {
    return this.listener.listening;
  }

  start(onWake: () => void): void {
    this.onWake = onWake;
    void this.listener.start();
  }

  close(): Promise<void> {
    return this.listener.close();
  }
}
