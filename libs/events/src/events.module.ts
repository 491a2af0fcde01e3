import { DynamicModule, Global, Module, Provider } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { AUDIT_ROW_SINK, AuditService } from '@gatehouse/audit';
import { GatewayConfig } from '@gatehouse/config';
import { AppLogger, Clock, MetricsService } from '@gatehouse/observability';
import { EventsMetrics } from './events.metrics';
import { EventsStatusProbe } from './events.status';
import { EventsWorker } from './events.worker';
import { ExpiryScanner } from './expiry.scanner';
import { NatsSink } from './nats.sink';
import { PgEventsWakeup } from './outbox-wakeup';
import { OutboxSink } from './outbox.sink';
import { WebhookSubscriptions } from './webhook-subscriptions';
import { ThreadedWebhookSender } from './threaded-webhook.sender';
import { SendOptions, WebhookSender } from './webhook.sender';
import { WebhookTester } from './webhook.tester';

const senderOptions = (c: GatewayConfig): SendOptions => ({
  timeoutMs: c.events.webhookTimeoutMs,
  allowPrivateTargets: c.events.allowPrivateTargets,
  maxConnections: c.events.perSubscriptionConcurrency,
});

const common: Provider[] = [
  {
    provide: EventsMetrics,
    inject: [MetricsService],
    useFactory: (m: MetricsService) => new EventsMetrics(m),
  },
  {
    provide: AUDIT_ROW_SINK,
    inject: [GatewayConfig, EventsMetrics],
    useFactory: (c: GatewayConfig, m: EventsMetrics) =>
      new OutboxSink(c.events.source, c.events.natsUrl !== null, m),
  },
  {
    provide: WebhookSubscriptions,
    inject: [DataSource, GatewayConfig],
    useFactory: (db: DataSource, c: GatewayConfig) =>
      new WebhookSubscriptions(db, c.events.allowPrivateTargets),
  },
  {
    provide: WebhookSender,
    inject: [GatewayConfig],
    useFactory: (c: GatewayConfig) => new WebhookSender(senderOptions(c)),
  },
  {
    provide: WebhookTester,
    inject: [WebhookSubscriptions, WebhookSender, GatewayConfig],
    useFactory: (subs: WebhookSubscriptions, sender: WebhookSender, c: GatewayConfig) =>
      new WebhookTester(subs, sender, c.events.source),
  },
  {
    provide: EventsStatusProbe,
    inject: [DataSource, EventsMetrics, GatewayConfig],
    useFactory: (db: DataSource, m: EventsMetrics, c: GatewayConfig) =>
      new EventsStatusProbe(db, m, c.events.readyMaxAgeSeconds),
  },
];

const worker: Provider = {
  provide: EventsWorker,
  inject: [DataSource, GatewayConfig, WebhookSubscriptions, EventsMetrics, AppLogger, Clock, AuditService],
  useFactory: (
    db: DataSource,
    c: GatewayConfig,
    subs: WebhookSubscriptions,
    m: EventsMetrics,
    logger: AppLogger,
    clock: Clock,
    audit: AuditService,
  ) =>
    new EventsWorker(
      db,
      c.events,
      subs,
      // Deliveries on a thread of their own (the CLI's `webhook test` posts in process).
      ThreadedWebhookSender.create(senderOptions(c), logger),
      c.events.natsUrl ? new NatsSink(c.events.natsUrl, c.events.natsStream, logger) : null,
      m,
      logger,
      clock,
      new ExpiryScanner(db, audit, c.events.expiringDays),
      new PgEventsWakeup((db.options as { url?: string }).url, logger),
    ),
};

/**
 * Events (dev-docs/events.md). Global so AuditService finds the outbox sink (AUDIT_ROW_SINK)
 * and writes each audit batch's events in its transaction. `worker: true` (the gateway) also
 * runs the delivery worker; the CLI writes events and manages subscriptions without it.
 */
@Global()
@Module({})
export class EventsModule {
  static forRoot(options: { worker: boolean }): DynamicModule {
    const providers = options.worker ? [...common, worker] : common;
    return {
      module: EventsModule,
      providers,
      exports: [
        AUDIT_ROW_SINK,
        WebhookSubscriptions,
        WebhookSender,
        WebhookTester,
        EventsStatusProbe,
        EventsMetrics,
      ],
    };
  }
}
