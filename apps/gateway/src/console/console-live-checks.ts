import { Injectable } from '@nestjs/common';
import { InjectThrottlerStorage, ThrottlerStorage } from '@nestjs/throttler';
import { GatewayConfig } from '@gatehouse/config';
import { DownloadCatalog } from '@gatehouse/downloads';
import { EntitlementService, normalizeTarget } from '@gatehouse/entitlements';
import { canonicalTag, formatRefusalAnswer, parseArtifactTag, refusalAnswer } from '@gatehouse/oci';
import { PullThroughService } from '@gatehouse/pull-through';
import { peekMemberLimit } from '@gatehouse/rate-limit';
import { UpstreamError } from '@gatehouse/upstream';

/** A check explain's verdict (database only) cannot make: it needs this gateway's counters or the upstream. */
export interface LiveCheck {
  check: 'rate_limit' | 'upstream';
  ok: boolean;
  detail: string;
  /** When failing: the reason code, and what the member's client gets. */
  reason?: 'rate_limited' | 'upstream_unknown' | 'upstream_unavailable';
  sees?: string;
}

/**
 * The last two checks of "why can't X pull Y?": the member's request limit now (the counters
 * the rate-limit guard counts in, read without counting) and whether the upstream has what was
 * asked for (the pull path's tag cache, or DownloadCatalog for releases and packages).
 */
@Injectable()
export class ConsoleLiveChecks {
  constructor(
    @InjectThrottlerStorage() private readonly storage: ThrottlerStorage,
    private readonly config: GatewayConfig,
    private readonly pull: PullThroughService,
    private readonly catalog: DownloadCatalog,
    private readonly entitlements: EntitlementService,
  ) {}

  async run(memberId: string, repository: string, tag: string | null): Promise<LiveCheck[]> {
    return [await this.rateLimit(memberId), await this.upstream(repository, tag)];
  }

  private async rateLimit(memberId: string): Promise<LiveCheck> {
    const state = await peekMemberLimit(this.storage, this.config.rateLimit, memberId).catch(() => undefined);
    if (state === undefined)
      return {
        check: 'rate_limit',
        ok: true,
        detail: 'the counters could not be read (requests are let through)',
      };
    if (state === null)
      return { check: 'rate_limit', ok: true, detail: 'no per-member limit (RATE_LIMIT_V2_PER_MEMBER=0)' };
    // Without Redis each replica counts alone: say so, as another replica may answer differently.
    const where = this.config.rateLimit.redisUrl ? '' : ' on this replica';
    const counted = `${state.used} of ${state.limit} requests in the last ${state.windowSeconds} s${where}`;
    if (!state.limited) return { check: 'rate_limit', ok: true, detail: `under the limit: ${counted}` };
    return {
      check: 'rate_limit',
      ok: false,
      detail: `limited: ${counted}; the next request fits in ${state.retryAfterSeconds} s`,
      reason: 'rate_limited',
      sees: `429 TOOMANYREQUESTS with Retry-After: ${state.retryAfterSeconds} (pulls and downloads alike)`,
    };
  }

  private async upstream(repository: string, tag: string | null): Promise<LiveCheck> {
    const target = normalizeTarget(repository);
    const what = target.kind === 'image' ? 'tag' : target.kind === 'releases' ? 'release' : 'version';
    let listed: string[] | null;
    let stale = '';
    try {
      if (target.kind === 'image') {
        const answer = await this.pull.listTags(target.name);
        listed = answer?.tags ?? null;
        if (answer?.stale)
          stale = ` (the upstream is not answering: its list from ${answer.stale.ageSeconds} s ago)`;
      } else {
        const slash = target.name.indexOf('/');
        listed = await this.catalog.published(
          target.kind,
          target.name.slice(0, slash),
          target.name.slice(slash + 1),
        );
      }
    } catch (e) {
      const why = e instanceof UpstreamError ? e.reason : (e as Error).message;
      return {
        check: 'upstream',
        ok: false,
        detail: `the upstream could not be read now (${why}); see the health page`,
        reason: 'upstream_unavailable',
        sees: 'a 5xx answer while the upstream is away (cached tags and blobs are still served)',
      };
    }
    if (listed === null) {
      return {
        check: 'upstream',
        ok: false,
        detail: `the upstream has no ${repository}`,
        reason: 'upstream_unknown',
        sees: formatRefusalAnswer(refusalAnswer(target.kind, 'target')),
      };
    }
    if (tag === null)
      return { check: 'upstream', ok: true, detail: `the upstream lists ${listed.length} ${what}s${stale}` };
    const how = this.entitlements.canonicalizationOf({ kind: target.kind });
    const wanted = canonicalTag(tag, how);
    if (listed.some((t) => canonicalTag(t, how) === wanted))
      return { check: 'upstream', ok: true, detail: `the upstream has ${what} ${tag}${stale}` };
    if (target.kind === 'image' && parseArtifactTag(wanted))
      return {
        check: 'upstream',
        ok: true,
        detail: `${tag} is an artifact tag: found through its subject at pull time`,
      };
    return {
      check: 'upstream',
      ok: false,
      detail: `the upstream has no ${what} ${tag} (${listed.length} listed)${stale}`,
      reason: 'upstream_unknown',
      sees: formatRefusalAnswer(refusalAnswer(target.kind, 'tag')),
    };
  }
}
