import { AccessExplanation, Entitlement, isEntitlementLive } from '@gatehouse/entitlements';
import { AccessKey, accessKeyUnusableReason, Member } from '@gatehouse/members';

// The same JSON shapes as `gatehouse ... --format json`, so scripts can use either.

export function memberView(m: Member) {
  return {
    id: m.id,
    username: m.username,
    status: m.status,
    note: m.note,
    createdAt: m.createdAt,
    updatedAt: m.updatedAt,
    disabledAt: m.disabledAt,
  };
}

export function keyStatus(k: AccessKey, now: Date): 'active' | 'revoked' | 'expired' {
  const unusable = accessKeyUnusableReason(k, now);
  return unusable === 'key_revoked' ? 'revoked' : unusable === 'key_expired' ? 'expired' : 'active';
}

export function keyView(k: AccessKey, now: Date) {
  return {
    id: k.id,
    member: k.member?.username ?? null,
    name: k.name,
    prefix: k.prefix,
    status: keyStatus(k, now),
    createdAt: k.createdAt,
    expiresAt: k.expiresAt,
    lastUsedAt: k.lastUsedAt,
    revokedAt: k.revokedAt,
  };
}

export function entitlementView(e: Entitlement, now: Date) {
  return {
    id: e.id,
    member: e.member?.username ?? null,
    repository: e.repository,
    tagRules: e.tagRules,
    expiresAt: e.expiresAt,
    live: isEntitlementLive(e, now),
    note: e.note,
    createdAt: e.createdAt,
    updatedAt: e.updatedAt,
  };
}

/**
 * The admin explain answer: the verdict with counts instead of key details; `message` is the
 * check that decided it (the first failing one, or the entitlement that admits the pull).
 */
export function explainView(x: AccessExplanation, repository: string, tag: string | null) {
  const { member, verdict } = x;
  const base = { repository, tag };
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
  for (const k of x.keys) accessKeys[keyStatus(k, x.checkedAt)] += 1;
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
