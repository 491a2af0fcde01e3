import { Entitlement, formatTarget, isEntitlementLive } from '@gatehouse/entitlements';
import { AccessKey, accessKeyStatus } from '@gatehouse/members';
import { Column } from '../output';

// `member show` lists a member's keys and entitlements with the same columns as `key list` and
// `entitlements`, minus the member column those add in front.

export function accessKeyColumns(now: Date): Column<AccessKey>[] {
  return [
    { header: 'prefix', value: (k) => k.prefix },
    { header: 'name', value: (k) => k.name },
    { header: 'status', value: (k) => accessKeyStatus(k, now) },
    { header: 'created', value: (k) => k.createdAt },
    { header: 'expires', value: (k) => k.expiresAt },
    { header: 'last used', value: (k) => k.lastUsedAt },
    { header: 'id', value: (k) => k.id },
  ];
}

export function entitlementColumns(now: Date): Column<Entitlement>[] {
  return [
    { header: 'repository', value: (e) => formatTarget(e) },
    { header: 'tags', value: (e) => e.tagRules },
    { header: 'expires', value: (e) => e.expiresAt },
    { header: 'status', value: (e) => (isEntitlementLive(e, now) ? 'live' : 'expired') },
    { header: 'note', value: (e) => e.note },
  ];
}
