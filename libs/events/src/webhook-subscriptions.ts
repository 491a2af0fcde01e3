import { randomBytes, randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import { eventTypeFilterProblem } from './event-types';
import { notifyEventsWork } from './outbox-wakeup';
import { sqlRows } from './sql-rows';
import { checkWebhookTarget, WebhookTargetError } from './webhook-target';

export interface WebhookSubscription {
  id: string;
  url: string;
  eventTypes: string[];
  memberFilter: string | null;
  repositoryFilter: string | null;
  description: string | null;
  enabled: boolean;
  disabledReason: string | null;
  createdBy: string;
  createdAt: Date;
}

/** A subscription with its signing secrets (newest first), for the worker only. */
export interface SigningSubscription extends WebhookSubscription {
  secrets: string[];
}

export interface NewSubscription {
  url: string;
  eventTypes: string[];
  memberFilter?: string | null;
  repositoryFilter?: string | null;
  description?: string | null;
  /** Who made it: `admin_token`, `cli`, a staff identity. */
  createdBy: string;
}

export type DeliveryStatus = 'pending' | 'delivered' | 'dead';

export interface WebhookDelivery {
  id: string;
  subscriptionId: string;
  eventId: string;
  eventType: string;
  status: DeliveryStatus;
  attempts: number;
  createdAt: Date;
  nextAttemptAt: Date;
  lastAttemptAt: Date | null;
  lastStatus: number | null;
  lastError: string | null;
  deliveredAt: Date | null;
}

export class WebhookNotFound extends Error {
  constructor(what: string) {
    super(`no webhook ${what}`);
    this.name = 'WebhookNotFound';
  }
}

/** A Standard Webhooks secret: `whsec_` and 32 random bytes in base64. */
export function newWebhookSecret(): string {
  return `whsec_${randomBytes(32).toString('base64')}`;
}

const SUBSCRIPTION_COLUMNS = `id, url, event_types AS "eventTypes", member_filter AS "memberFilter",
  repository_filter AS "repositoryFilter", description, enabled, disabled_reason AS "disabledReason",
  created_by AS "createdBy", created_at AS "createdAt"`;

const DELIVERY_COLUMNS = `id, subscription_id AS "subscriptionId", event_id AS "eventId", event_type AS "eventType",
  status, attempts, created_at AS "createdAt", next_attempt_at AS "nextAttemptAt",
  last_attempt_at AS "lastAttemptAt", last_status AS "lastStatus", last_error AS "lastError",
  delivered_at AS "deliveredAt"`;

/** Webhook subscriptions and their deliveries in PostgreSQL; one API for the admin routes and the CLI. */
export class WebhookSubscriptions {
  constructor(
    private readonly db: DataSource,
    private readonly allowPrivateTargets: boolean,
  ) {}

  /** Checks and stores a subscription; the secret is returned here only. */
  async add(input: NewSubscription): Promise<{ subscription: WebhookSubscription; secret: string }> {
    const url = (await checkWebhookTarget(input.url, this.allowPrivateTargets)).toString();
    const types = input.eventTypes.length > 0 ? input.eventTypes.map((t) => t.trim()) : ['*'];
    const problem = types.map(eventTypeFilterProblem).find((p) => p !== null);
    if (problem) throw new WebhookTargetError(problem);
    const text = (v: string | null | undefined, what: string): string | null => {
      const t = v?.trim() || null;
      if (t && (t.length > 256 || /\p{Cc}/u.test(t)))
        throw new WebhookTargetError(`the ${what} is too long or holds control characters`);
      return t;
    };
    const secret = newWebhookSecret();
    const rows: WebhookSubscription[] = await this.db.query(
      `INSERT INTO webhook_subscriptions (id, url, secrets, event_types, member_filter, repository_filter, description, created_by)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING ${SUBSCRIPTION_COLUMNS}`,
      [
        randomUUID(),
        url,
        [secret],
        types,
        text(input.memberFilter, 'member filter'),
        text(input.repositoryFilter, 'repository filter'),
        text(input.description, 'description'),
        input.createdBy,
      ],
    );
    return { subscription: rows[0], secret };
  }

  async list(): Promise<WebhookSubscription[]> {
    return this.db.query(`SELECT ${SUBSCRIPTION_COLUMNS} FROM webhook_subscriptions ORDER BY created_at, id`);
  }

  async get(id: string): Promise<WebhookSubscription> {
    const rows: WebhookSubscription[] = isUuid(id)
      ? await this.db.query(`SELECT ${SUBSCRIPTION_COLUMNS} FROM webhook_subscriptions WHERE id = $1`, [id])
      : [];
    if (rows.length === 0) throw new WebhookNotFound(id);
    return rows[0];
  }

  /** One subscription with its secrets (for a test delivery). */
  async withSecrets(id: string): Promise<SigningSubscription> {
    const sub = await this.get(id);
    const rows: SigningSubscription[] = await this.db.query(
      `SELECT ${SUBSCRIPTION_COLUMNS}, secrets FROM webhook_subscriptions WHERE id = $1`,
      [sub.id],
    );
    return rows[0];
  }

  /** Every enabled subscription with its secrets (the worker's view). */
  async signing(): Promise<SigningSubscription[]> {
    return this.db.query(`SELECT ${SUBSCRIPTION_COLUMNS}, secrets FROM webhook_subscriptions WHERE enabled`);
  }

  /** Removes a subscription and its deliveries. */
  async remove(id: string): Promise<WebhookSubscription> {
    const sub = await this.get(id);
    await this.db.query(`DELETE FROM webhook_subscriptions WHERE id = $1`, [sub.id]);
    return sub;
  }

  /** A new secret signs from now on; the previous one keeps signing beside it until the next rotation. */
  async rotateSecret(id: string): Promise<string> {
    const sub = await this.get(id);
    const secret = newWebhookSecret();
    await this.db.query(`UPDATE webhook_subscriptions SET secrets = ARRAY[$2, secrets[1]] WHERE id = $1`, [
      sub.id,
      secret,
    ]);
    return secret;
  }

  async setEnabled(id: string, enabled: boolean, reason: string | null = null): Promise<WebhookSubscription> {
    const sub = await this.get(id);
    const rows = sqlRows<WebhookSubscription>(
      await this.db.query(
        `UPDATE webhook_subscriptions SET enabled = $2, disabled_reason = $3 WHERE id = $1 RETURNING ${SUBSCRIPTION_COLUMNS}`,
        [sub.id, enabled, enabled ? null : reason],
      ),
    );
    return rows[0];
  }

  async deliveries(
    id: string,
    options: { status?: DeliveryStatus; limit?: number } = {},
  ): Promise<WebhookDelivery[]> {
    const sub = await this.get(id);
    const limit = Math.max(1, Math.min(options.limit ?? 50, 1000));
    return this.db.query(
      `SELECT ${DELIVERY_COLUMNS} FROM webhook_deliveries
        WHERE subscription_id = $1 AND ($2::text IS NULL OR status = $2)
        ORDER BY created_at DESC, id LIMIT $3`,
      [sub.id, options.status ?? null, limit],
    );
  }

  /**
   * Sends dead (or still pending) deliveries again now: one by its id, or every dead one of a
   * subscription (one delivery of a named subscription, when both are given). The event keeps its id, so a receiver that saw it already can ignore it.
   */
  async redeliver(target: { deliveryId?: string; subscriptionId?: string }): Promise<number> {
    if (target.deliveryId) {
      if (!isUuid(target.deliveryId)) throw new WebhookNotFound(`delivery ${target.deliveryId}`);
      // With a subscription named too, only a delivery of that subscription (the routes name both).
      const rows = sqlRows(
        await this.db.query(
          `UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = now(), created_at = now()
            WHERE id = $1 AND ($2::uuid IS NULL OR subscription_id = $2) RETURNING id`,
          [target.deliveryId, target.subscriptionId ?? null],
        ),
      );
      if (rows.length === 0) throw new WebhookNotFound(`delivery ${target.deliveryId}`);
      await notifyEventsWork(this.db);
      return rows.length;
    }
    const sub = await this.get(target.subscriptionId ?? '');
    const rows = sqlRows(
      await this.db.query(
        `UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = now(), created_at = now()
          WHERE subscription_id = $1 AND status = 'dead' RETURNING id`,
        [sub.id],
      ),
    );
    if (rows.length > 0) await notifyEventsWork(this.db);
    return rows.length;
  }
}

export function isUuid(v: string): boolean {
  return /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(v);
}
