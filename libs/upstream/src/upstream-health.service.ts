import { Injectable } from '@nestjs/common';
import { AppLogger } from '@gatehouse/observability';
import { Clock } from '@gatehouse/observability';
import { UpstreamFailureReason } from './upstream.error';
import type { UpstreamKindStatus } from './upstream-kind';
import { UpstreamRegistryClient } from './upstream-registry.client';

export interface UpstreamHealthStatus {
  ok: boolean;
  /** Absent when ok. */
  reason?: UpstreamFailureReason;
  /** The operator diagnostic (cause and fix), or a short confirmation when ok. Never a secret. */
  message: string;
  /** Epoch ms of the check this answer comes from. */
  checkedAt: number;
  /** The upstream's kind after the check (configured, or detected from its answer). */
  kind?: UpstreamKindStatus;
}

export interface UpstreamHealthOptions {
  /** How long a result is reused, so readiness probes do not hammer the upstream. */
  ttlMs?: number;
  /** A repository known to exist upstream, probed to prove the token can read images. */
  probeRepository?: string;
}

export const UPSTREAM_HEALTH_TTL_MS = 30_000;

/**
 * The upstream part of /readyz: reachable and accepting the service token. Results are cached
 * for about 30 s and concurrent probes share one check.
 */
@Injectable()
export class UpstreamHealth {
  private last: UpstreamHealthStatus | null = null;
  private running: Promise<UpstreamHealthStatus> | null = null;
  private readonly ttlMs: number;
  private readonly log: AppLogger;

  constructor(
    private readonly client: UpstreamRegistryClient,
    logger: AppLogger,
    private readonly clock: Clock = new Clock(),
    private readonly options: UpstreamHealthOptions = {},
  ) {
    this.ttlMs = options.ttlMs ?? UPSTREAM_HEALTH_TTL_MS;
    this.log = logger.child({ component: 'upstream-health' });
  }

  /** The cached answer when fresh; otherwise one new check. `force` skips the cache. */
  async check(options: { force?: boolean } = {}): Promise<UpstreamHealthStatus> {
    const now = this.clock.now();
    if (!options.force && this.last && now - this.last.checkedAt < this.ttlMs) return this.last;
    if (!this.running) {
      this.running = this.run().finally(() => {
        this.running = null;
      });
    }
    return this.running;
  }

  /**
   * The start-up self-check. Its failure is logged once (the client's operator line, at error
   * level); success gets one info line so the operator sees which scheme the upstream uses.
   * Never throws: a gateway with a broken upstream still starts, serves cache hits and reports
   * not-ready.
   */
  async selfCheck(): Promise<UpstreamHealthStatus> {
    try {
      const status = await this.check({ force: true });
      if (status.ok) this.log.info({ upstreamOk: true }, `Upstream self-check passed: ${status.message}`);
      return status;
    } catch (err) {
      this.log.error({ err }, 'Upstream self-check crashed');
      return {
        ok: false,
        reason: 'protocol',
        message: 'the upstream self-check crashed; see the log',
        checkedAt: this.clock.now(),
      };
    }
  }

  /** The last result without triggering a check (null before the first one). */
  get lastStatus(): UpstreamHealthStatus | null {
    return this.last;
  }

  private async run(): Promise<UpstreamHealthStatus> {
    const result = await this.client.checkAccess({ probeRepository: this.options.probeRepository });
    const checkedAt = this.clock.now();
    const kind = this.client.kindStatus();
    const status: UpstreamHealthStatus = result.ok
      ? {
          ok: true,
          message: `the upstream accepts the service token (${result.authScheme} auth${result.probedRepository ? `, read ${result.probedRepository}` : ''})`,
          checkedAt,
          kind,
        }
      : { ok: false, reason: result.reason, message: result.message, checkedAt, kind };
    this.last = status;
    return status;
  }
}
