import { Entitlement, isEntitlementLive } from '@gatehouse/entitlements';
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
