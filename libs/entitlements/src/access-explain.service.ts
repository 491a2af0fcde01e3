import { Injectable } from '@nestjs/common';
import { AccessKey, AccessKeyService, Member, MemberService } from '@gatehouse/members';
import { Clock } from '@gatehouse/observability';
import { AccessVerdict, explainAccess } from './access-explanation';
import {
  EntitlementExplanation,
  EntitlementService,
  formatTarget,
  normalizeTarget,
} from './entitlement.service';
import { Reachability } from './tag-admission';

export interface AccessExplanation {
  member: Member | null;
  keys: AccessKey[];
  /** null when there is no member to ask about. */
  entitlement: EntitlementExplanation | null;
  verdict: AccessVerdict;
  /** The instant the verdict was judged at (key and entitlement expiry are compared with it). */
  checkedAt: Date;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * "Why can't X pull Y?" from the database as it is now, for the CLI and the admin API alike.
 * Reads without the pull path's short-lived caches, so a change just made shows at once.
 */
@Injectable()
export class AccessExplainService {
  constructor(
    private readonly members: MemberService,
    private readonly keys: AccessKeyService,
    private readonly entitlements: EntitlementService,
    private readonly clock: Clock,
  ) {}

  /**
   * `memberRef` is a username or a member id; `repository` a target (`acme/app`,
   * `releases:acme/tool`, `packages:acme/cli`); without a tag the question is about the target.
   * `reach` is the pull path's reachability (the gateway passes `PullThroughService`): with it an
   * artifact tag of an image is judged as the registry judges it ("signature of v1.0.0"); without
   * it (the CLI, which has no upstream) the answer says the subject was not checked.
   */
  async explain(
    memberRef: string,
    repository: string,
    tag?: string | null,
    reach?: Reachability,
  ): Promise<AccessExplanation> {
    const target = normalizeTarget(repository);
    const name = target.name;
    const checkedAt = this.clock.date();
    const member = await this.findMember(memberRef);
    const keys = member ? await this.keys.list(member.username) : [];
    const entitlement = member
      ? await this.entitlements.explain(member.id, name, tag ?? undefined, reach, target.kind)
      : null;
    const verdict = explainAccess({
      memberRef,
      repository: formatTarget(target),
      kind: target.kind,
      tag,
      member,
      keys,
      entitlement,
      now: checkedAt,
    });
    return { member, keys, entitlement, verdict, checkedAt };
  }

  /** An id first when it looks like one; a username that happens to look like an id is still found. */
  private async findMember(memberRef: string): Promise<Member | null> {
    const byId = UUID.test(memberRef) ? await this.members.findById(memberRef.toLowerCase()) : null;
    return byId ?? (await this.members.findByUsername(memberRef));
  }
}
