import { DataSource } from 'typeorm';
import { DEFAULT_EVENTS_CONFIG } from '@gatehouse/config';
import { Clock, createCapturingLogger, MetricsService } from '@gatehouse/observability';
import { EventsMetrics } from './events.metrics';
import { EventsWorker } from './events.worker';
import { EventsWakeup } from './outbox-wakeup';
import { WebhookSubscriptions } from './webhook-subscriptions';
import { WebhookSender } from './webhook.sender';

/** A wake-up whose notifications the test fires by hand. */
class FakeWakeup implements EventsWakeup {
  listening = true;
  private onWake: () => void = () => undefined;
  start(onWake: () => void): void {
    this.onWake = onWake;
  }
  fire(): void {
    this.onWake();
  }
  async close(): Promise<void> {}
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * How passes are scheduled (the SQL itself runs against PostgreSQL in the events int-specs):
 * a database whose fan-out statement answers after `delayMs` with the next of `claims`.
 */
function setUp(claims: number[] = [], delayMs = 30, pollMs = 60_000) {
  const dispatches: number[] = [];
  const db = {
    query: async (sql: string) => {
      if (!sql.includes('INSERT INTO webhook_deliveries')) return [];
      dispatches.push(Date.now());
      await sleep(delayMs);
      return [{ n: claims.shift() ?? 0, fanned: 0 }];
    },
  } as unknown as DataSource;
  const subscriptions = { signing: async () => [] } as unknown as WebhookSubscriptions;
  const sender = { close: async () => undefined } as unknown as WebhookSender;
  const wakeup = new FakeWakeup();
  const worker = new EventsWorker(
    db,
    { ...DEFAULT_EVENTS_CONFIG, pollMs, fallbackPollMs: 40 },
    subscriptions,
    sender,
    null,
    new EventsMetrics(new MetricsService()),
    createCapturingLogger('error').logger,
    new Clock(),
    null,
    wakeup,
  );
  return { worker, wakeup, dispatches };
}

describe('EventsWorker wake-ups', () => {
  let stop: (() => Promise<void>) | null = null;
  afterEach(async () => {
    await stop?.();
    stop = null;
  });

  it('a burst of notifications during a pass is one more pass, not one per notification', async () => {
    const { worker, wakeup, dispatches } = setUp();
    stop = () => worker.beforeApplicationShutdown();
    worker.onApplicationBootstrap();
    await sleep(100);
    expect(dispatches).toHaveLength(1); // the first pass; the poll is a minute away
    wakeup.fire();
    await sleep(5);
    for (let i = 0; i < 50; i++) wakeup.fire();
    await sleep(200);
    // The burst landed in the pass it interrupted (+1) or just before it started (+0).
    expect(dispatches.length).toBeGreaterThanOrEqual(2);
    expect(dispatches.length).toBeLessThanOrEqual(3);
  });

  it('a notification while idle runs a pass at once; a full claim claims again', async () => {
    const { worker, wakeup, dispatches } = setUp([0, 500, 500, 7], 5);
    stop = () => worker.beforeApplicationShutdown();
    worker.onApplicationBootstrap();
    await sleep(60);
    expect(dispatches).toHaveLength(1);
    const at = Date.now();
    wakeup.fire();
    await sleep(100);
    expect(dispatches).toHaveLength(4);
    expect(dispatches[1] - at).toBeLessThan(1_000);
  });

  it('polls at the fallback interval while not listening, at pollMs while listening', async () => {
    const { worker, wakeup, dispatches } = setUp([], 1, 60_000);
    wakeup.listening = false;
    stop = () => worker.beforeApplicationShutdown();
    worker.onApplicationBootstrap();
    await sleep(300);
    expect(dispatches.length).toBeGreaterThanOrEqual(4);
    wakeup.listening = true;
    await sleep(100);
    const n = dispatches.length;
    await sleep(300);
    expect(dispatches).toHaveLength(n);
  });
});
