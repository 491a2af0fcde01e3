import { OnApplicationBootstrap } from '@nestjs/common';
import { GatewayConfig } from '@gatehouse/config';
import { EntitlementService } from '@gatehouse/entitlements';
import { Clock } from '@gatehouse/observability';
import {
  UpstreamError,
  UpstreamFailureReason,
  UpstreamRegistryClient,
  upstreamMember,
} from '@gatehouse/upstream';

export interface DownloadsReadinessStatus {
  ok: boolean;
  /** An upstream failure, or `repository_not_visible`: no entitled release repository could be read. */
  reason?: UpstreamFailureReason | 'repository_not_visible';
  message: string;
  checkedAt: number;
}

const TTL_MS = 30_000;
/** How many entitled release repositories (newest grants first) are tried for one that is visible. */
const PROBED_TARGETS = 5;

/**
 * The release part of readiness: once any member holds a `releases:` entitlement, the service
 * token must be able to list releases (`read:repository`). One release page of an entitled
 * repository is read; a token without the scope fails it with the operator line (cause and fix,
 * logged and counted by the upstream client's failure reporter, exactly as for `read:package`)
 * and /readyz reports it. Without releases entitlements the scope is not needed and not asked.
 * The row is `up` only when a release list was actually read: when none of the newest entitled
 * repositories is visible upstream, nothing proves downloads work, and the row is down with
 * `repository_not_visible` and the fix (dev-docs/decisions.md). Cached about 30 s; also run once
 * at start so the log says it early.
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
    const targets = await this.entitlements.someTargets('releases', PROBED_TARGETS);
    const checkedAt = this.clock.now();
    // Not kept: the first releases grant is checked at the next probe, not 30 s later.
    // Through another Gatehouse the service credentials are a member there, not a scoped Forgejo token.
    const gatehouse = this.upstream.kind === 'gatehouse';
    const who = upstreamMember(this.config.upstream.username);
    if (targets.length === 0)
      return {
        ok: true,
        message: `no releases entitlements: ${gatehouse ? 'nothing to check upstream' : 'read:repository not needed'}`,
        checkedAt,
      };
    const invisible: string[] = [];
    try {
      for (const target of targets) {
        const [owner, repo] = target.split('/');
        const r = await this.upstream.downloads.listReleases(owner, repo, { limit: 1 });
        if (!r.found) {
          invisible.push(target);
          continue;
        }
        const missing = invisible.length > 0 ? `; not visible upstream: ${invisible.join(', ')}` : '';
        this.last = {
          ok: true,
          message: `${gatehouse ? `the upstream Gatehouse's member ${who}` : 'the service token'} can list releases (read ${target})${missing}`,
          checkedAt,
        };
        return this.last;
      }
      this.last = {
        ok: false,
        reason: 'repository_not_visible',
        message: `no entitled release repository is visible upstream (${invisible.join(', ')}), so release downloads cannot be served or checked. Fix: ${gatehouse ? `ask the upstream operator to grant ${who} releases:<owner>/<repo> there (\`gatehouse explain ${who} releases:<owner>/<repo>@<tag>\` there shows why)` : "create them upstream or give the service token's user access to them"}; a grant to a repository that does not exist is removed with gatehouse revoke <member> releases:<owner>/<repo>`,
        checkedAt,
      };
    } catch (err) {
      if (!(err instanceof UpstreamError)) throw err;
      this.last = { ok: false, reason: err.reason, message: err.message, checkedAt };
    }
    return this.last;
  }
}
