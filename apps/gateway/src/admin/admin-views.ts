import { AccessExplanation, entitlementView } from '@gatehouse/entitlements';
import { accessKeyStatus } from '@gatehouse/members';

/**
 * The admin explain answer: the verdict with counts instead of key details; `message` is the
 * check that decided it (the first failing one, or the entitlement that admits the pull).
 */
export function explainView(x: AccessExplanation, repository: string, tag: string | null) {
  const { member, verdict } = x;
  // What the member's client gets, from the same table the registry and the downloads answer by.
  const base = {
    repository,
    tag,
    memberSees: verdict.memberSees,
    answer: verdict.answer,
    ifMissing: verdict.ifMissing,
  };
  const failing = verdict.checks.find((c) => !c.ok);
  if (!member) {
    return {
      ...base,
      member: null,
      allowed: false,
      reason: verdict.reason,
      message: failing?.detail ?? '',
      accessKeys: null,
      entitlement: null,
      matchedRule: null,
    };
  }
  const accessKeys = { active: 0, revoked: 0, expired: 0 };
  for (const k of x.keys) accessKeys[accessKeyStatus(k, x.checkedAt)] += 1;
  const found = x.entitlement;
  const target = tag ? `${repository}:${tag}` : repository;
  return {
    ...base,
    member: { id: member.id, username: member.username, status: member.status },
    allowed: verdict.allowed,
    reason: verdict.reason,
    message: failing
      ? failing.detail
      : `${member.username} may pull ${target}: ${verdict.checks[verdict.checks.length - 1].detail}`,
    accessKeys,
    entitlement: found?.entitlement ? entitlementView({ ...found.entitlement, member }, x.checkedAt) : null,
    matchedRule: found?.allowed && found.match ? found.match.rule : null,
  };
}
