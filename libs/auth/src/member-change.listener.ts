import { Inject, Injectable, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { DATABASE_READY, PgChannelListener } from '@gatehouse/database';
import { EntitlementService } from '@gatehouse/entitlements';
import { MEMBER_CHANGES_CHANNEL } from '@gatehouse/members';
import { AppLogger } from '@gatehouse/observability';
import { MemberStateCache } from './member-state.cache';

/** While not listening, the caches keep entries at most this long. */
export const SHORT_CACHE_MS = 1_000;
/** Reconnection attempts back off from 0.5 s doubling up to this. */
const FIRST_RECONNECT_DELAY_MS = 500;
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
  private readonly listener: PgChannelListener;

  constructor(
    dataSource: DataSource,
    @Inject(DATABASE_READY) private readonly ready: Promise<boolean> | boolean,
    private readonly states: MemberStateCache,
    private readonly entitlements: EntitlementService,
    private readonly logger: AppLogger,
  ) {
    this.listener = new PgChannelListener(
      {
        url: (dataSource.options as { url?: string }).url,
        channel: MEMBER_CHANGES_CHANNEL,
        firstDelayMs: FIRST_RECONNECT_DELAY_MS,
        maxDelayMs: MAX_RECONNECT_DELAY_MS,
      },
      {
        notified: (member) => {
          if (!member) return;
          this.states.forgetMember(member);
          this.entitlements.forgetMember(member);
        },
        listening: () => {
          // Anything changed before LISTEN took effect is unknown here: start from empty caches.
          this.states.invalidate();
          this.entitlements.forgetAll();
          this.states.shortenCache(null);
          this.entitlements.shortenCache(null);
        },
        lost: (err, phase) => {
          if (phase === 'connect')
            this.logger.warn(
              { err },
              'cannot listen for member changes; retrying (caches kept short meanwhile)',
            );
          else
            this.logger.warn(
              `lost the member-change listener: caches kept at most ${SHORT_CACHE_MS} ms until it reconnects`,
            );
          this.degrade();
        },
      },
    );
  }

  /** Whether the LISTEN connection is up (for tests and readiness detail). */
  get isListening(): boolean {
    return this.listener.listening;
  }

  /** The backend pid of the LISTEN connection (tests terminate it), or null. */
  get backendPid(): number | null {
    return this.listener.backendPid;
  }

  async onApplicationBootstrap(): Promise<void> {
    await this.ready;
    this.degrade();
    await this.listener.start();
  }

  async onModuleDestroy(): Promise<void> {
    await this.listener.close();
  }

  private degrade(): void {
    this.states.shortenCache(SHORT_CACHE_MS);
    this.entitlements.shortenCache(SHORT_CACHE_MS);
  }
}
