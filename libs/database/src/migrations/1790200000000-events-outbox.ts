import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Events (dev-docs/events.md): the outbox each audit batch writes its CloudEvents into in the
 * same transaction, the webhook subscriptions, and one delivery row per (subscription, event).
 * `available_at` holds back a `pull.checked` a moment so the GET of the same pull can withdraw
 * it (`pull_key`: member, repository and tag of a pull); `nats_pending` marks events still to be published to JetStream.
 */
export class EventsOutbox1790200000000 implements MigrationInterface {
  name = 'EventsOutbox1790200000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`CREATE TABLE event_outbox (
      id uuid PRIMARY KEY,
      type text NOT NULL,
      member_id uuid,
      repository text,
      pull_key text,
      payload jsonb NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      available_at timestamptz NOT NULL DEFAULT now(),
      dispatched_at timestamptz,
      withdrawn boolean NOT NULL DEFAULT false,
      nats_pending boolean NOT NULL DEFAULT false
    )`);
    await q.query(
      `CREATE INDEX event_outbox_undispatched ON event_outbox (available_at) WHERE dispatched_at IS NULL`,
    );
    await q.query(`CREATE INDEX event_outbox_nats ON event_outbox (created_at) WHERE nats_pending`);
    await q.query(`CREATE INDEX event_outbox_created ON event_outbox (created_at)`);
    await q.query(
      `CREATE INDEX event_outbox_pull ON event_outbox (pull_key, created_at) WHERE pull_key IS NOT NULL`,
    );
    await q.query(`CREATE TABLE event_expiry_notices (
      kind text NOT NULL,
      target_id uuid NOT NULL,
      expires_at timestamptz NOT NULL,
      noticed_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (kind, target_id, expires_at)
    )`);
    await q.query(`CREATE TABLE webhook_subscriptions (
      id uuid PRIMARY KEY,
      url text NOT NULL,
      secrets text[] NOT NULL,
      event_types text[] NOT NULL,
      member_filter text,
      repository_filter text,
      description text,
      enabled boolean NOT NULL DEFAULT true,
      disabled_reason text,
      created_by text NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now()
    )`);
    await q.query(`CREATE TABLE webhook_deliveries (
      id uuid PRIMARY KEY,
      subscription_id uuid NOT NULL REFERENCES webhook_subscriptions(id) ON DELETE CASCADE,
      event_id uuid NOT NULL,
      event_type text NOT NULL,
      status text NOT NULL DEFAULT 'pending',
      attempts integer NOT NULL DEFAULT 0,
      created_at timestamptz NOT NULL DEFAULT now(),
      next_attempt_at timestamptz NOT NULL DEFAULT now(),
      last_attempt_at timestamptz,
      last_status integer,
      last_error text,
      delivered_at timestamptz,
      UNIQUE (subscription_id, event_id)
    )`);
    await q.query(
      `CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending'`,
    );
    await q.query(`CREATE INDEX webhook_deliveries_sub ON webhook_deliveries (subscription_id, created_at)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE webhook_deliveries`);
    await q.query(`DROP TABLE webhook_subscriptions`);
    await q.query(`DROP TABLE event_expiry_notices`);
    await q.query(`DROP TABLE event_outbox`);
  }
}
