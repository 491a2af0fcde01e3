import { BeforeApplicationShutdown, OnApplicationBootstrap } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { EventsConfig } from '@gatehouse/config';
import { AppLogger, Clock } from '@gatehouse/observability';
import { EventsMetrics } from './events.metrics';
import { ExpiryScanner } from './expiry.scanner';
import { NatsSink } from './nats.sink';
import { EventsWakeup } from './outbox-wakeup';
import { nextAttemptAt } from './retry-schedule';
import { sqlRows } from './sql-rows';
import { SigningSubscription, WebhookSubscriptions } from './webhook-subscriptions';
import { WebhookPoster } from './threaded-webhook.sender';
import { SendResult } from './webhook.sender';

const BATCH = 500;
const HOUSEKEEPING_MS = 30_000;

interface Claimed {
  id: string;
  subscriptionId: string;
  eventId: string;
  attempts: number;
  createdAt: Date;
}

interface Queued {
  claim: Claimed;
  body: string | undefined;
}

/** A lane holds up to this many times its concurrency (in flight and queued); the lease covers that. */
const QUEUE_FACTOR = 4;
/** Deliveries started in one turn of the event loop. */
const PUMP_SLICE = 16;

interface Outcome {
  id: string;
  status: 'pending' | 'delivered' | 'dead';
  code: number | null;
  error: string | null;
  next: Date | null;
}

/**
 * Delivers the outbox, on every replica at once: each step claims its rows with
 * `FOR UPDATE SKIP LOCKED`, so replicas share the work and never take the same row.
 * A pass runs when the wake-up (LISTEN on `EVENTS_WAKE_CHANNEL`, notified by the transaction that
 * wrote outbox rows) fires: notifications during a pass coalesce into one more pass. Otherwise it
 * polls, every `pollMs` while listening and every `fallbackPollMs` while the connection is down.
 * 1. fan-out: new events become one delivery row per matching subscription (one statement);
 * 2. NATS: pending events are published and marked only after the stream acknowledged them;
 * 3. webhooks: due deliveries are leased (next attempt moved past the request's timeout, so a
 *    replica killed mid-request leaves them to the others) and posted concurrently, at most
 *    `perSubscriptionConcurrency` per subscription, so a slow receiver holds only its own slots;
 *    outcomes are written back in batches.
 */
export class EventsWorker implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private timer: NodeJS.Timeout | null = null;
  private ticking: Promise<void> | null = null;
  private stopped = false;
  /** Claimed deliveries per subscription: `active` requests in flight, the rest queued. */
  private readonly lanes = new Map<
    string,
    { sub: SigningSubscription; queue: Queued[]; active: number; saturated: boolean }
  >();
  private activeTotal = 0;
  private again = false;
  private subsCache: { at: number; subs: SigningSubscription[] } | null = null;
  private outcomes: Outcome[] = [];
  private flushing: Promise<void> | null = null;
  private pumpScheduled = false;
  private running = new Set<Promise<void>>();
  private lastHousekeeping = 0;

  constructor(
    private readonly db: DataSource,
    private readonly config: EventsConfig,
    private readonly subscriptions: WebhookSubscriptions,
    private readonly sender: WebhookPoster,
    private readonly nats: NatsSink | null,
    private readonly metrics: EventsMetrics,
    private readonly logger: AppLogger,
    private readonly clock: Clock,
    private readonly expiry: ExpiryScanner | null,
    private readonly wakeup: EventsWakeup | null = null,
  ) {}

  onApplicationBootstrap(): void {
    this.wakeup?.start(() => {
      this.metrics.wakeups.inc({ cause: 'notify' });
      this.kick();
    });
    this.schedule(0);
  }

  /** How long to wait for work when nothing woke the worker. */
  private get pollMs(): number {
    return this.wakeup?.listening ? this.config.pollMs : this.config.fallbackPollMs;
  }

  async beforeApplicationShutdown(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.wakeup?.close();
    await this.ticking;
    await Promise.allSettled([...this.running]);
    await this.flushOutcomes();
    await this.releaseQueued();
    await this.sender.close();
    await this.nats?.close();
  }

  private schedule(ms: number, poll = false): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      if (poll) this.metrics.wakeups.inc({ cause: 'poll' });
      this.again = false;
      this.ticking = this.tick()
        .then((busy) => {
          this.again ||= busy;
        })
        .catch((e: unknown) => this.paused(e))
        .finally(() => {
          this.ticking = null;
          this.metrics.listening.set(this.wakeup?.listening ? 1 : 0);
          if (this.again) this.schedule(0);
          else this.schedule(this.pollMs, true);
        });
    }, ms);
    this.timer.unref();
  }

  /** Runs a pass soon: woken, a lane has room again, or there is more to claim. */
  private kick(): void {
    if (this.stopped) return;
    if (this.ticking) {
      this.again = true;
      return;
    }
    if (this.timer) clearTimeout(this.timer);
    this.schedule(0);
  }

  private lastPauseLog = 0;

  /** A failed pass (the database or NATS away) is retried at the next tick; logged once a minute. */
  private paused(e: unknown): void {
    if (this.clock.now() - this.lastPauseLog < 60_000) return;
    this.lastPauseLog = this.clock.now();
    this.logger.warn({ err: e }, 'event delivery paused: retrying every tick');
  }

  /**
   * One pass; true when a lane was filled to its room (more may be due: the next pass runs at
   * once). Otherwise the worker waits for a wake-up or the poll: a pass is several queries, and a
   * busy loop of them would take the CPU and the pool from the requests.
   */
  async tick(): Promise<boolean> {
    await this.dispatch();
    if (this.nats) await this.publishNats();
    const saturated = await this.deliverDue();
    if (this.clock.now() - this.lastHousekeeping >= HOUSEKEEPING_MS) {
      this.lastHousekeeping = this.clock.now();
      await this.housekeeping();
    }
    return saturated;
  }

  /**
   * New events → one delivery per matching enabled subscription: claim, mark and fan out in one
   * statement (its own transaction: the three commit together or not at all).
   */
  private async dispatch(): Promise<number> {
    let total = 0;
    for (;;) {
      const [{ n }] = (await this.db.query(
        `WITH c AS (
           SELECT id FROM event_outbox WHERE dispatched_at IS NULL AND available_at <= now()
            ORDER BY available_at LIMIT ${BATCH} FOR UPDATE SKIP LOCKED),
         o AS (
           UPDATE event_outbox e SET dispatched_at = now() FROM c WHERE e.id = c.id
           RETURNING e.id, e.type, e.payload->>'subject' AS subject, e.repository),
         f AS (
           INSERT INTO webhook_deliveries (id, subscription_id, event_id, event_type, created_at, next_attempt_at)
           SELECT gen_random_uuid(), s.id, o.id, o.type, now(), now()
             FROM o JOIN webhook_subscriptions s ON s.enabled
              AND (o.type = ANY(s.event_types) OR '*' = ANY(s.event_types)
                   OR split_part(o.type, '.', 1) || '.*' = ANY(s.event_types))
              AND (s.member_filter IS NULL OR lower(s.member_filter) = lower(o.subject))
              AND (s.repository_filter IS NULL OR s.repository_filter = o.repository)
           ON CONFLICT (subscription_id, event_id) DO NOTHING RETURNING 1)
         SELECT (SELECT count(*) FROM o)::int AS n, (SELECT count(*) FROM f)::int AS fanned`,
      )) as Array<{ n: number; fanned: number }>;
      total += n;
      if (n < BATCH) return total;
    }
  }

  private async publishNats(): Promise<number> {
    const nats = this.nats!;
    let total = 0;
    for (;;) {
      const n = await this.db.transaction(async (m) => {
        const rows: Array<{ id: string; type: string; payload: unknown }> = await m.query(
          `SELECT id, type, payload FROM event_outbox WHERE nats_pending AND available_at <= now()
            ORDER BY created_at LIMIT ${BATCH} FOR UPDATE SKIP LOCKED`,
        );
        if (rows.length === 0) return 0;
        try {
          await nats.publish(
            rows.map((r) => ({ id: r.id, type: r.type, payload: JSON.stringify(r.payload) })),
          );
        } catch (e) {
          this.metrics.retried.inc({ sink: 'nats' }, rows.length);
          throw e;
        }
        await m.query(`UPDATE event_outbox SET nats_pending = false WHERE id = ANY($1::uuid[])`, [
          rows.map((r) => r.id),
        ]);
        this.metrics.delivered.inc({ sink: 'nats' }, rows.length);
        return rows.length;
      });
      total += n;
      if (n < BATCH) return total;
    }
  }

  private async signing(): Promise<SigningSubscription[]> {
    const now = this.clock.now();
    if (!this.subsCache || now - this.subsCache.at > 1000)
      this.subsCache = { at: now, subs: await this.subscriptions.signing() };
    return this.subsCache.subs;
  }

  /** Claims due deliveries for every lane with room; true when a lane got all its room. */
  private async deliverDue(): Promise<boolean> {
    const subs = await this.signing();
    if (subs.length === 0) return false;
    const perSub = this.config.perSubscriptionConcurrency;
    const ids: string[] = [];
    const rooms: number[] = [];
    for (const s of subs) {
      const lane = this.lanes.get(s.id);
      const free = perSub * QUEUE_FACTOR - (lane ? lane.queue.length + lane.active : 0);
      if (free > 0) {
        ids.push(s.id);
        rooms.push(free);
      }
    }
    if (ids.length === 0) return false;
    // Long enough for a full lane: every queued request may take the whole timeout.
    const leaseSeconds = Math.ceil((QUEUE_FACTOR * this.config.webhookTimeoutMs) / 1000) + 30;
    // Lease and read the payloads in one statement.
    // The payload comes as text and is posted as it is: no parse and stringify per delivery.
    const claimed = sqlRows<Claimed & { payload: string | null }>(
      await this.db.query(
        `WITH l AS (
           UPDATE webhook_deliveries w
              SET attempts = w.attempts + 1, last_attempt_at = now(),
                  next_attempt_at = now() + interval '${leaseSeconds} seconds'
             FROM (SELECT d.id FROM unnest($1::uuid[], $2::int[]) AS r(sub, room)
                   CROSS JOIN LATERAL (
                     SELECT id FROM webhook_deliveries
                      WHERE subscription_id = r.sub AND status = 'pending' AND next_attempt_at <= now()
                      ORDER BY next_attempt_at LIMIT r.room FOR UPDATE SKIP LOCKED) d) c
            WHERE w.id = c.id
           RETURNING w.id, w.subscription_id, w.event_id, w.attempts, w.created_at)
         SELECT l.id, l.subscription_id AS "subscriptionId", l.event_id AS "eventId", l.attempts,
                l.created_at AS "createdAt", e.payload::text AS payload
           FROM l LEFT JOIN event_outbox e ON e.id = l.event_id`,
        [ids, rooms],
      ),
    );
    if (claimed.length === 0) return false;
    const bySub = new Map(subs.map((s) => [s.id, s]));
    const counts = new Map<string, number>();
    for (const c of claimed) {
      const sub = bySub.get(c.subscriptionId)!;
      let lane = this.lanes.get(sub.id);
      if (!lane) this.lanes.set(sub.id, (lane = { sub, queue: [], active: 0, saturated: false }));
      lane.sub = sub;
      lane.queue.push({ claim: c, body: c.payload ?? undefined });
      counts.set(sub.id, (counts.get(sub.id) ?? 0) + 1);
    }
    let saturated = false;
    ids.forEach((id, i) => {
      const lane = this.lanes.get(id);
      if (lane && counts.get(id) === rooms[i]) saturated = lane.saturated = true;
    });
    this.pump();
    return saturated;
  }

  /**
   * Starts queued deliveries: at most `perSubscriptionConcurrency` per subscription, so a slow
   * receiver holds only its own slots, and `concurrency` in all. At most PUMP_SLICE start in one
   * turn of the event loop; the rest start in the next (setImmediate), so a claimed batch never
   * holds the requests the gateway is serving behind a burst of hundreds of dispatches.
   */
  private pump(): void {
    if (this.pumpScheduled || this.stopped) return;
    const perSub = this.config.perSubscriptionConcurrency;
    let started = 0;
    for (const [id, lane] of this.lanes) {
      while (lane.queue.length > 0 && lane.active < perSub && this.activeTotal < this.config.concurrency) {
        if (started++ === PUMP_SLICE) {
          this.pumpScheduled = true;
          setImmediate(() => {
            this.pumpScheduled = false;
            this.pump();
          });
          return;
        }
        const next = lane.queue.shift()!;
        lane.active++;
        this.activeTotal++;
        const run = this.deliverOne(lane.sub, next.claim, next.body).finally(() => {
          lane.active--;
          this.activeTotal--;
          this.running.delete(run);
          if (lane.active === 0 && lane.queue.length === 0) this.lanes.delete(id);
          this.pump();
          // A lane that was full, half empty: more may be due, claim now rather than at the next poll.
          if (lane.saturated && lane.queue.length + lane.active <= (perSub * QUEUE_FACTOR) / 2) {
            lane.saturated = false;
            this.kick();
          }
        });
        this.running.add(run);
      }
    }
  }

  /** At shutdown, claimed deliveries not yet started are handed back, due now, their attempt uncounted. */
  private async releaseQueued(): Promise<void> {
    const ids = [...this.lanes.values()].flatMap((l) => l.queue.map((q) => q.claim.id));
    this.lanes.clear();
    if (ids.length === 0) return;
    try {
      await this.db.query(
        `UPDATE webhook_deliveries SET attempts = attempts - 1, next_attempt_at = now()
          WHERE id = ANY($1::uuid[]) AND status = 'pending'`,
        [ids],
      );
    } catch (e) {
      this.logger.warn(
        { err: e, count: ids.length },
        'claimed deliveries not handed back; their lease will run out',
      );
    }
  }

  private async deliverOne(sub: SigningSubscription, c: Claimed, body: string | undefined): Promise<void> {
    const result: SendResult =
      body === undefined
        ? {
            ok: false,
            status: null,
            error: 'the event is no longer in the outbox',
            retryAfterMs: null,
            gone: false,
          }
        : await this.sender.send(sub.url, sub.secrets, c.eventId, body, new Date(this.clock.now()));
    if (result.ok) {
      this.metrics.delivered.inc({ sink: 'webhook' });
      this.record({ id: c.id, status: 'delivered', code: result.status, error: null, next: null });
      return;
    }
    if (result.gone) {
      this.metrics.deadLettered.inc({ sink: 'webhook' });
      // Stored before the subscription is disabled, so the dead letter shows the 410 at once.
      await this.writeOutcomes([
        { id: c.id, status: 'dead', code: result.status, error: result.error, next: null },
      ]);
      await this.disable(sub, 'the receiver answered 410 Gone');
      return;
    }
    const next =
      body === undefined
        ? null
        : nextAttemptAt({
            attempts: c.attempts,
            firstAt: new Date(c.createdAt).getTime(),
            now: this.clock.now(),
            retryForMs: this.config.retryForMs,
            retryAfterMs: result.retryAfterMs,
          });
    if (next === null) {
      this.metrics.deadLettered.inc({ sink: 'webhook' });
      this.record({ id: c.id, status: 'dead', code: result.status, error: result.error, next: null });
    } else {
      this.metrics.retried.inc({ sink: 'webhook' });
      this.record({
        id: c.id,
        status: 'pending',
        code: result.status,
        error: result.error,
        next: new Date(next),
      });
    }
  }

  private async disable(sub: SigningSubscription, reason: string): Promise<void> {
    try {
      await this.subscriptions.setEnabled(sub.id, false, reason);
      await this.db.query(
        `UPDATE webhook_deliveries SET status = 'dead', last_error = $2 WHERE subscription_id = $1 AND status = 'pending'`,
        [sub.id, `subscription disabled: ${reason}`],
      );
      this.logger.warn({ subscription: sub.id, url: sub.url }, `webhook subscription disabled: ${reason}`);
    } catch (e) {
      this.logger.warn({ err: e, subscription: sub.id }, 'could not disable a webhook subscription');
    }
  }

  /** Outcomes are written back together, one UPDATE per flush. */
  private record(o: Outcome): void {
    this.outcomes.push(o);
    this.flushing ??= new Promise<void>((r) => setTimeout(r, 20)).then(() => this.flushOutcomes());
  }

  private async flushOutcomes(): Promise<void> {
    const batch = this.outcomes;
    this.outcomes = [];
    this.flushing = null;
    await this.writeOutcomes(batch);
  }

  private async writeOutcomes(batch: Outcome[]): Promise<void> {
    if (batch.length === 0) return;
    try {
      await this.db.query(
        `UPDATE webhook_deliveries d
            SET status = r.status, last_status = r.code, last_error = r.err,
                next_attempt_at = COALESCE(r.next, d.next_attempt_at),
                delivered_at = CASE WHEN r.status = 'delivered' THEN now() ELSE d.delivered_at END
           FROM unnest($1::uuid[], $2::text[], $3::int[], $4::text[], $5::timestamptz[]) AS r(id, status, code, err, next)
          WHERE d.id = r.id`,
        [
          batch.map((o) => o.id),
          batch.map((o) => o.status),
          batch.map((o) => o.code),
          batch.map((o) => o.error),
          batch.map((o) => o.next),
        ],
      );
    } catch (e) {
      // The leases run out and the deliveries are tried again: at least once, never lost.
      this.logger.warn({ err: e, count: batch.length }, 'delivery outcomes not stored; they will be retried');
    }
  }

  /** Records `entitlement.expiring` for what expires soon (every 30 s; callable for tests). */
  async scanExpiring(): Promise<number> {
    return (await this.expiry?.scan()) ?? 0;
  }

  private async housekeeping(): Promise<void> {
    await this.scanExpiring().catch((e: unknown) => this.logger.warn({ err: e }, 'expiry scan failed'));
    const days = this.config.retentionDays;
    if (days > 0) {
      await this.db.query(
        `DELETE FROM webhook_deliveries WHERE status = 'delivered' AND delivered_at < now() - make_interval(days => $1)`,
        [days],
      );
      await this.db.query(
        `DELETE FROM event_outbox o WHERE dispatched_at < now() - make_interval(days => $1) AND NOT nats_pending
            AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = o.id)`,
        [days],
      );
    }
  }
}
