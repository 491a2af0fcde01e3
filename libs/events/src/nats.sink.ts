import { connect } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, JetStreamClient } from '@nats-io/jetstream';
import { AppLogger } from '@gatehouse/observability';

type NatsConnection = Awaited<ReturnType<typeof connect>>;

export const NATS_SUBJECT_PREFIX = 'gatehouse.events.';

export interface NatsMessage {
  id: string;
  type: string;
  payload: string;
}

/**
 * Publishes events to JetStream: subject `gatehouse.events.<type>`, `Nats-Msg-Id` = the event id
 * (the stream drops a republish after a crash as a duplicate). `publish` resolves only once the
 * stream acknowledged every message. The stream is created when absent.
 */
export class NatsSink {
  private nc: NatsConnection | null = null;
  private js: JetStreamClient | null = null;
  private connecting: Promise<JetStreamClient> | null = null;

  constructor(
    private readonly servers: string,
    private readonly stream: string,
    private readonly logger: AppLogger,
  ) {}

  private async client(): Promise<JetStreamClient> {
    if (this.js && this.nc && !this.nc.isClosed()) return this.js;
    this.connecting ??= this.open().finally(() => (this.connecting = null));
    return this.connecting;
  }

  private async open(): Promise<JetStreamClient> {
    const nc = await connect({
      servers: this.servers.split(',').map((s) => s.trim()),
      name: 'gatehouse-events',
      reconnect: true,
      maxReconnectAttempts: -1,
      timeout: 5_000,
    });
    const jsm = await jetstreamManager(nc);
    try {
      await jsm.streams.info(this.stream);
    } catch {
      await jsm.streams.add({ name: this.stream, subjects: [`${NATS_SUBJECT_PREFIX}>`] });
      this.logger.info({ stream: this.stream }, 'created the JetStream stream for events');
    }
    this.nc = nc;
    this.js = jetstream(nc, { timeout: 10_000 });
    return this.js;
  }

  async publish(messages: NatsMessage[]): Promise<void> {
    const js = await this.client();
    await Promise.all(
      messages.map((m) => js.publish(`${NATS_SUBJECT_PREFIX}${m.type}`, m.payload, { msgID: m.id })),
    );
  }

  async close(): Promise<void> {
    const nc = this.nc;
    this.nc = null;
    this.js = null;
    if (nc) await nc.drain().catch(() => undefined);
  }
}
