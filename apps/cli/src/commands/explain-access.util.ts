import type { EntitlementExplanation } from '@gatehouse/entitlements';
import type { AccessKey, Member } from '@gatehouse/members';
import { keyStatus } from './member-errors.util';

/**
 * Why a member can or cannot pull, in the audit log's reason vocabulary where one exists:
 * `member_unknown` (the audit shows `bad_credentials`), `member_disabled`, `no_access_key`,
 * `key_revoked`, `key_expired`, `no_usable_key` (some revoked, some expired),
 * `repository_not_entitled`, `entitlement_expired`, `tag_not_entitled`.
 */
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

export interface ExplainCheck {
  check: 'member' | 'access_keys' | 'entitlement';
  ok: boolean;
  detail: string;
}

export interface AccessVerdict {
  allowed: boolean;
  /** The first failing check, null when allowed. */
  reason: ExplainReason | null;
  /** What the member's client gets, worded as a support person would tell them. */
  memberSees: string;
  /** What would change the answer (null when allowed). */
  fix: string | null;
  checks: ExplainCheck[];
}

export interface ExplainInput {
  username: string;
  repository: string;
  tag: string;
  member: Member | null;
  keys: AccessKey[];
  /** null when there is no member to ask about. */
  entitlement: EntitlementExplanation | null;
  now: Date;
}

const iso = (d: Date | null | undefined) => (d ? d.toISOString() : null);

/** Every check is made (not only the first failing one) so support sees the whole picture. */
export function explainAccess(input: ExplainInput): AccessVerdict {
  const { username, repository, tag, member, keys, entitlement, now } = input;
  const ref = `${repository}:${tag}`;
  const checks: ExplainCheck[] = [];
  const failures: Array<{ reason: ExplainReason; fix: string }> = [];

  if (!member) {
    checks.push({ check: 'member', ok: false, detail: `no member named "${username}" exists` });
    return {
      allowed: false,
      reason: 'member_unknown',
      memberSees: 'docker login fails: 401 UNAUTHORIZED (the audit log shows token.refuse bad_credentials)',
      fix: `check the spelling (gatehouse member list), or create the member: gatehouse member create ${username}`,
      checks,
    };
  }

  if (member.status === 'active') {
    checks.push({ check: 'member', ok: true, detail: `member ${member.username} is active` });
  } else {
    checks.push({
      check: 'member',
      ok: false,
      detail: `member ${member.username} is disabled${member.disabledAt ? ` since ${iso(member.disabledAt)}` : ''}`,
    });
    failures.push({ reason: 'member_disabled', fix: `gatehouse member enable ${member.username}` });
  }

  const usable = keys.filter((k) => keyStatus(k, now) === 'active');
  const describeKey = (k: AccessKey) =>
    `${k.prefix}${k.name ? ` "${k.name}"` : ''} ${keyStatus(k, now)}` +
    (k.revokedAt
      ? ` at ${iso(k.revokedAt)}`
      : k.expiresAt
        ? ` ${keyStatus(k, now) === 'expired' ? 'at' : 'until'} ${iso(k.expiresAt)}`
        : '');
  if (usable.length > 0) {
    checks.push({
      check: 'access_keys',
      ok: true,
      detail: `${usable.length} usable access key${usable.length === 1 ? '' : 's'}: ${usable.map(describeKey).join('; ')}`,
    });
  } else {
    const statuses = new Set(keys.map((k) => keyStatus(k, now)));
    const reason: ExplainReason =
      keys.length === 0
        ? 'no_access_key'
        : statuses.size === 1 && statuses.has('revoked')
          ? 'key_revoked'
          : statuses.size === 1 && statuses.has('expired')
            ? 'key_expired'
            : 'no_usable_key';
    checks.push({
      check: 'access_keys',
      ok: false,
      detail:
        keys.length === 0
          ? 'the member has no access key'
          : `no usable access key: ${keys.map(describeKey).join('; ')}`,
    });
    failures.push({ reason, fix: `give them a new key: gatehouse key create ${member.username}` });
  }

  if (!entitlement || (!entitlement.allowed && entitlement.reason === 'repository_not_entitled')) {
    checks.push({ check: 'entitlement', ok: false, detail: `no entitlement to ${repository}` });
    failures.push({
      reason: 'repository_not_entitled',
      fix: `gatehouse grant ${member.username} ${repository} --tags ${tag}`,
    });
  } else if (entitlement.allowed) {
    const e = entitlement.entitlement;
    const rule = entitlement.match
      ? `rule "${entitlement.match.rule}" (${entitlement.match.kind})`
      : 'a rule';
    checks.push({
      check: 'entitlement',
      ok: true,
      detail: `entitlement to ${repository} admits ${tag} by ${rule}; ${e.expiresAt ? `expires ${iso(e.expiresAt)}` : 'no expiry'}`,
    });
  } else if (entitlement.reason === 'entitlement_expired') {
    const e = entitlement.entitlement!;
    checks.push({
      check: 'entitlement',
      ok: false,
      detail: `entitlement to ${repository} expired at ${iso(e.expiresAt)} (rules: ${e.tagRules.join(', ')})`,
    });
    failures.push({
      reason: 'entitlement_expired',
      fix: `renew it: gatehouse grant ${member.username} ${repository} --tags '${e.tagRules.join(',')}' --expires <date>`,
    });
  } else {
    const e = entitlement.entitlement!;
    checks.push({
      check: 'entitlement',
      ok: false,
      detail: `entitlement to ${repository} does not admit ${tag}: its rules are ${e.tagRules.join(', ')}`,
    });
    failures.push({
      reason: 'tag_not_entitled',
      fix: `widen the rules: gatehouse grant ${member.username} ${repository} --tags '${[...e.tagRules, tag].join(',')}'`,
    });
  }

  const first = failures[0];
  return {
    allowed: !first,
    reason: first?.reason ?? null,
    memberSees: first ? memberSees(first.reason, ref) : `docker pull of ${ref} is served`,
    fix: first ? failures.map((f) => f.fix).join('; then ') : null,
    checks,
  };
}

function memberSees(reason: ExplainReason, ref: string): string {
  switch (reason) {
    case 'member_unknown':
    case 'member_disabled':
    case 'no_access_key':
    case 'key_revoked':
    case 'key_expired':
    case 'no_usable_key':
      return 'docker login fails: 401 UNAUTHORIZED (tokens already issued stop working within 10 seconds)';
    case 'repository_not_entitled':
    case 'entitlement_expired':
      return `docker pull ${ref} fails: 404 NAME_UNKNOWN (the same answer as for a repository that does not exist)`;
    case 'tag_not_entitled':
      return `docker pull ${ref} fails: 404 MANIFEST_UNKNOWN (the same answer as for a tag that does not exist)`;
  }
}
