import { OnApplicationBootstrap } from '@nestjs/common';
import { GatewayConfig } from '@gatehouse/config';
import { EntitlementService } from '@gatehouse/entitlements';
import { Clock } from '@gatehouse/observability';
import { UpstreamError, UpstreamFailureReason, UpstreamRegistryClient } from '@gatehouse/upstream';

export interface DownloadsReadinessStatus {
  ok: boolean;
  reason?: UpstreamFailureReason;
  message: string;
  checkedAt: number;
}

const TTL_MS = 30_000;

/**
 * The release part of readiness: once any member holds a `releases:` entitlement, the service
 * token must be able to list releases (`read:repository`). One release page of an entitled
 * repository is read; a token without the scope fails it with the operator line (cause and fix,
 * logged and counted by the upstream client's failure reporter, exactly as for `read:package`)
 * and /readyz reports it. Without releases entitlements the scope is not needed and not asked.
 * Cached about 30 s; also run once at start so the log says it early.
 */
export class DownloadsReadiness implements OnApplicationBootstrap {
  private last: DownloadsReadinessStatus | null = null;
  private running: Promise<DownloadsReadinessStatus> | null = null;

  constructor(
    private readonly config: GatewayConfig,
    private readonly entitlements: EntitlementService,
    private readonly upstream: UpstreamRegistryClient,
    private readonly clock: Clock,
  ) {}

  onApplicationBootstrap(): void {
    if (this.config.upstream.enabled) void this.check().catch(() => undefined);
  }

  check(options: { force?: boolean } = {}): Promise<DownloadsReadinessStatus> {
    const now = this.clock.now();
    if (!options.force && this.last && now - this.last.checkedAt < TTL_MS) return Promise.resolve(this.last);
    this.running ??= this.run().finally(() => (this.running = null));
    return this.running;
  }

  private async run(): Promise<DownloadsReadinessStatus> {
    const target = await this.entitlements.anyTarget('releases');
    const checkedAt = this.clock.now();
    // Not kept: the first releases grant is checked at the next probe, not 30 s later.
    if (!target)
      return { ok: true, message: 'no releases entitlements: read:repository not needed', checkedAt };
    const [owner, repo] = target.split('/');
    try {
      const r = await this.upstream.downloads.listReleases(owner, repo, { limit: 1 });
      this.last = {
        ok: true,
        message: r.found
          ? `the service token can list releases (read ${target})`
          : `the service token can list releases (${target} is not visible upstream)`,
        checkedAt,
      };
    } catch (err) {
      if (!(err instanceof UpstreamError)) throw err;
      this.last = { ok: false, reason: err.reason, message: err.message, checkedAt };
    }
    return this.last;
  }
}
