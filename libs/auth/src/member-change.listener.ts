import { Inject, Injectable, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { DATABASE_READY } from '@gatehouse/database';
import { EntitlementService } from '@gatehouse/entitlements';
import { MEMBER_CHANGES_CHANNEL } from '@gatehouse/members';
import { AppLogger } from '@gatehouse/observability';
import { MemberStateCache } from './member-state.cache';

/** While not listening, the caches keep entries at most this long. */
export const SHORT_CACHE_MS = 1_000;
/** Reconnection attempts back off from 0.5 s up to this. */
const MAX_RECONNECT_DELAY_MS = 5_000;

/**
 * One LISTEN connection per replica on `MEMBER_CHANGES_CHANNEL`: a change announced by any
 * replica's write path (`notifyMemberChanged` in libs/members, libs/entitlements) drops that
 * member from this replica's MemberStateCache and entitlement cache, so a revoked key, a disabled
 * member or a removed entitlement is refused everywhere within a round trip, not after
 * AUTH_STATE_CACHE_SECONDS. The time-based caches stay as the fallback: while the connection is
 * lost (database restart, backend terminated) both caches keep entries at most SHORT_CACHE_MS,
 * the listener reconnects with backoff, and on reconnecting drops everything (changes may have
 * been missed meanwhile).
 */
@Injectable()
export class MemberChangeListener implements OnApplicationBootstrap, OnModuleDestroy {
  private client: Client | null = null;
  private stopped = false;
  private retryTimer: NodeJS.Timeout | null = null;
  private delayMs = 500;
  private listening = false;

  constructor(
    private readonly dataSource: DataSource,
    @Inject(DATABASE_READY) private readonly ready: Promise<boolean> | boolean,
    private readonly states: MemberStateCache,
    private readonly entitlements: EntitlementService,
    private readonly logger: AppLogger,
  ) {}

  /** Whether the LISTEN connection is up (for tests and readiness detail). */
  get isListening(): boolean {
    return this.listening;
  }

  /** The backend pid of the LISTEN connection (tests terminate it), or null. */
  get backendPid(): number | null {
    return (this.client as unknown as { processID?: number } | null)?.processID ?? null;
  }

  async onApplicationBootstrap(): Promise<void> {
    await this.ready;
    this.degrade();
    await this.connect();
  }

  async onModuleDestroy(): Promise<void> {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    const c = this.client;
    this.client = null;
    if (c) await c.end().catch(() => undefined);
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    const options = this.dataSource.options as { url?: string };
    const client = new Client({ connectionString: options.url, connectionTimeoutMillis: 5_000 });
    client.on('error', () => this.lost(client));
    client.on('end', () => this.lost(client));
    client.on('notification', (n) => {
      if (n.channel !== MEMBER_CHANGES_CHANNEL || !n.payload) return;
      this.states.forgetMember(n.payload);
      this.entitlements.forgetMember(n.payload);
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${MEMBER_CHANGES_CHANNEL}`);
    } catch (err) {
      await client.end().catch(() => undefined);
      this.logger.warn({ err }, 'cannot listen for member changes; retrying (caches kept short meanwhile)');
      this.schedule();
      return;
    }
    if (this.stopped) {
      await client.end().catch(() => undefined);
      return;
    }
    this.client = client;
    this.listening = true;
    this.delayMs = 500;
    // Anything changed before LISTEN took effect is unknown here: start from empty caches.
    this.states.invalidate();
    this.entitlements.forgetAll();
    this.states.shortenCache(null);
    this.entitlements.shortenCache(null);
  }

  private lost(client: Client): void {
    if (this.client !== client) return;
    this.client = null;
    this.listening = false;
    client.end().catch(() => undefined);
    if (this.stopped) return;
    this.logger.warn(
      `lost the member-change listener: caches kept at most ${SHORT_CACHE_MS} ms until it reconnects`,
    );
    this.degrade();
    this.schedule();
  }

  private degrade(): void {
    this.states.shortenCache(SHORT_CACHE_MS);
    this.entitlements.shortenCache(SHORT_CACHE_MS);
  }

  private schedule(): void {
    if (this.stopped || this.retryTimer) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      void this.connect();
    }, this.delayMs);
    this.retryTimer.unref();
    this.delayMs = Math.min(this.delayMs * 2, MAX_RECONNECT_DELAY_MS);
  }
}
