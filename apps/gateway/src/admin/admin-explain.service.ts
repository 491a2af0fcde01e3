import { HttpStatus, Injectable } from '@nestjs/common';
import { EntitlementService, normalizeRepository } from '@gatehouse/entitlements';
import { accessKeyUnusableReason, AccessKeyService, Member, MemberService } from '@gatehouse/members';
import { Clock } from '@gatehouse/observability';
import { isValidTag } from '@gatehouse/oci';
import { adminHttpError } from './admin-errors.interceptor';
import { entitlementView } from './admin-views';

/** The vocabulary of `gatehouse explain`, so both answer alike; null when allowed. */
export type ExplainReason =
  | 'member_unknown'
  | 'member_disabled'
  | 'no_access_key'
  | 'key_revoked'
  | 'key_expired'
  | 'no_usable_key'
  | 'repository_not_entitled'
  | 'entitlement_expired'
  | 'tag_not_entitled';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** `acme/app:v1.2.3` → repository and tag; the tag is after the last colon of the last component. */
export function splitImage(image: string): { repository: string; tag: string | null } {
  const value = image.trim();
  const slash = value.lastIndexOf('/');
  const colon = value.indexOf(':', slash + 1);
  if (colon < 0) return { repository: normalizeRepository(value), tag: null };
  const tag = value.slice(colon + 1);
  if (!isValidTag(tag)) {
    throw adminHttpError(
      HttpStatus.BAD_REQUEST,
      `"${tag}" is not a tag (letters, digits, "_", "." and "-"; up to 128)`,
    );
  }
  return { repository: normalizeRepository(value.slice(0, colon)), tag };
}

/**
 * "Why can't X pull Y?" from the database as it is now: the first obstacle a pull would meet
 * (member, access keys, entitlement, tag rule) decides the verdict, and every fact is returned so
 * support sees the whole picture. Reads without the gateway's short-lived caches.
 */
@Injectable()
export class AdminExplainService {
  constructor(
    private readonly members: MemberService,
    private readonly keys: AccessKeyService,
    private readonly entitlements: EntitlementService,
    private readonly clock: Clock,
  ) {}

  async explain(memberRef: string, image: string) {
    const { repository, tag } = splitImage(image);
    const now = new Date(this.clock.now());
    const member: Member | null = UUID.test(memberRef)
      ? await this.members.findById(memberRef.toLowerCase())
      : await this.members.findByUsername(memberRef);
    const base = { repository, tag };
    if (!member) {
      return {
        ...base,
        member: null,
        allowed: false,
        reason: 'member_unknown' as ExplainReason,
        message: `there is no member "${memberRef}"`,
        accessKeys: null,
        entitlement: null,
        matchedRule: null,
      };
    }
    const keys = await this.keys.list(member.username);
    const accessKeys = { active: 0, revoked: 0, expired: 0 };
    for (const k of keys) {
      const unusable = accessKeyUnusableReason(k, now);
      accessKeys[
        unusable === 'key_revoked' ? 'revoked' : unusable === 'key_expired' ? 'expired' : 'active'
      ] += 1;
    }
    const found = await this.entitlements.explain(member.id, repository, tag ?? undefined);
    const entitlement = found.entitlement ? entitlementView({ ...found.entitlement, member }, now) : null;
    const matchedRule = found.allowed && found.match ? found.match.rule : null;
    const target = tag ? `${repository}:${tag}` : repository;

    let reason: ExplainReason | null;
    let message: string;
    if (member.status !== 'active') {
      reason = 'member_disabled';
      message = `${member.username} is disabled: logins are refused`;
    } else if (accessKeys.active === 0) {
      reason =
        keys.length === 0
          ? 'no_access_key'
          : accessKeys.revoked === keys.length
            ? 'key_revoked'
            : accessKeys.expired === keys.length
              ? 'key_expired'
              : 'no_usable_key';
      message = `${member.username} has no active access key (${accessKeys.revoked} revoked, ${accessKeys.expired} expired)`;
    } else if (!found.allowed) {
      reason = found.reason;
      message =
        found.reason === 'repository_not_entitled'
          ? `${member.username} has no entitlement to ${repository}`
          : found.reason === 'entitlement_expired'
            ? `the entitlement of ${member.username} to ${repository} expired at ${found.entitlement?.expiresAt?.toISOString()}`
            : `no tag rule of ${member.username} on ${repository} (${found.entitlement?.tagRules.join(', ')}) admits "${tag}"`;
    } else {
      reason = null;
      message = matchedRule
        ? `${member.username} may pull ${target} (rule "${matchedRule}")`
        : `${member.username} may pull tags of ${repository} that the rules admit`;
    }
    return {
      ...base,
      member: { id: member.id, username: member.username, status: member.status },
      allowed: reason === null,
      reason,
      message,
      accessKeys,
      entitlement,
      matchedRule,
    };
  }
}
