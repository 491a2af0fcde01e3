import { Client } from 'pg';

/** What a channel listener tells its owner. */
export interface PgChannelHooks {
  /** A notification on the channel (its payload, '' when none). */
  notified(payload: string): void;
  /** LISTEN took effect, at the start and after each reconnection: notifications sent meanwhile are lost. */
  listening(): void;
  /** The connection could not be made or was lost; the listener retries with backoff. */
  lost(err: unknown, phase: 'connect' | 'connection'): void;
}

export interface PgChannelOptions {
  url: string | undefined;
  channel: string;
  /** Shown in pg_stat_activity. */
  applicationName?: string;
  /** Reconnection delay: from `firstDelayMs`, doubling up to `maxDelayMs`. */
  firstDelayMs: number;
  maxDelayMs: number;
  /** Each delay drawn between half and all of it (replicas restarted together spread out). */
  jitter?: boolean;
}

/**
 * One dedicated pg connection that LISTENs on one channel (not from the pool: a pooled client
 * would be handed back and its LISTEN lost). Lost (database restart, backend terminated), it
 * reconnects with backoff and says `listening()` again once LISTEN holds. Shared by the member
 * change listener (libs/auth) and the events wake-up (libs/events).
 */
export class PgChannelListener {
  private client: Client | null = null;
  private stopped = false;
  private retryTimer: NodeJS.Timeout | null = null;
  private delayMs: number;
  private up = false;

  constructor(
    private readonly options: PgChannelOptions,
    private readonly hooks: PgChannelHooks,
  ) {
    this.delayMs = options.firstDelayMs;
  }

  get listening(): boolean {
    return this.up;
  }

  /** The backend pid of the LISTEN connection (tests terminate it), or null. */
  get backendPid(): number | null {
    return (this.client as unknown as { processID?: number } | null)?.processID ?? null;
  }

  start(): Promise<void> {
    return this.connect();
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
    const { url, channel, applicationName } = this.options;
    const client = new Client({
      connectionString: url,
      connectionTimeoutMillis: 5_000,
      ...(applicationName ? { application_name: applicationName } : {}),
    });
    client.on('error', (err) => this.lost(client, err));
    client.on('end', () => this.lost(client, null));
    client.on('notification', (n) => {
      if (n.channel === channel) this.hooks.notified(n.payload ?? '');
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${channel}`);
    } catch (err) {
      await client.end().catch(() => undefined);
      if (this.stopped) return;
      this.hooks.lost(err, 'connect');
      this.schedule();
      return;
    }
    if (this.stopped) {
      await client.end().catch(() => undefined);
      return;
    }
    this.client = client;
    this.up = true;
    this.delayMs = this.options.firstDelayMs;
    this.hooks.listening();
  }

  private lost(client: Client, err: unknown): void {
    if (this.client !== client) return;
    this.client = null;
    this.up = false;
    client.end().catch(() => undefined);
    if (this.stopped) return;
    this.hooks.lost(err, 'connection');
    this.schedule();
  }

  private schedule(): void {
    if (this.stopped || this.retryTimer) return;
    const delay = this.options.jitter ? this.delayMs / 2 + Math.random() * (this.delayMs / 2) : this.delayMs;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      void this.connect();
    }, delay);
    this.retryTimer.unref();
    this.delayMs = Math.min(this.delayMs * 2, this.options.maxDelayMs);
  }
}
