import type { AuditEvent } from '@gatehouse/audit';
import { CloudEvent, EventType } from './event-types';

/** What the outbox stores for one audit row. */
export interface OutboxDraft {
  event: CloudEvent;
  memberId: string | null;
  repository: string | null;
  /** Member, repository and tag of a pull: the parts of one pull share it (see dev-docs/events.md). */
  pullKey: string | null;
}

/** Admin API and CLI change actions and the event each one is. */
const CHANGES: Record<string, EventType> = {
  'admin.member.create': 'member.created',
  'admin.member.disable': 'member.disabled',
  'admin.member.enable': 'member.enabled',
  'admin.key.create': 'key.created',
  'admin.key.revoke': 'key.revoked',
  'admin.entitlement.grant': 'entitlement.granted',
  'admin.entitlement.revoke': 'entitlement.revoked',
  'cli.member.create': 'member.created',
  'cli.member.disable': 'member.disabled',
  'cli.member.enable': 'member.enabled',
  'cli.key.create': 'key.created',
  'cli.key.revoke': 'key.revoked',
  'cli.entitlement.grant': 'entitlement.granted',
  'cli.entitlement.revoke': 'entitlement.revoked',
  'entitlement.expiring': 'entitlement.expiring',
};

/** Details a change event may carry: named, never copied wholesale, so no secret slips through. */
const CHANGE_DETAILS = [
  'actor',
  'tagRules',
  'expiresAt',
  'created',
  'accessKeyId',
  'accessKeyPrefix',
  'name',
];
const EXPIRY_DETAILS = ['target', 'kind', 'expiresAt', 'accessKeyId', 'accessKeyPrefix', 'daysLeft'];

/** Actions whose denial is a refused access (the audit reason says why). */
const ACCESS_ACTIONS = new Set([
  'manifest.get',
  'manifest.head',
  'blob.get',
  'blob.head',
  'tags.list',
  'referrers.list',
  'download',
  'download.list',
  'registry.auth.refuse',
  'download.auth.refuse',
]);

function isTagReference(reference: string | null): reference is string {
  return !!reference && !reference.includes(':');
}

function pick(details: Record<string, unknown> | null, keys: string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of keys) if (details && details[k] !== undefined) out[k] = details[k];
  return out;
}

/** The tag a manifest request was for, or reached through (a digest's `viaTag`). */
function pullTag(row: AuditEvent): string | null {
  const d = row.details ?? {};
  if (typeof d.tag === 'string') return d.tag;
  if (isTagReference(row.reference)) return row.reference;
  return typeof d.viaTag === 'string' ? d.viaTag : null;
}

/** Which event, if any, an audit row is. */
export function eventTypeOf(row: AuditEvent): EventType | null {
  const change = CHANGES[row.action];
  if (change) return row.outcome === 'allowed' ? change : null;
  if (row.reason === 'rate_limited') return 'limit.hit';
  if (row.action === 'token.issue') return row.outcome === 'allowed' ? 'login.issued' : null;
  if (row.action === 'token.refuse') return 'login.refused';
  if (row.outcome === 'error' && (row.upstreamStatus !== null || (row.reason ?? '').startsWith('upstream')))
    return 'upstream.failed';
  if (row.action === 'upstream.failure') return 'upstream.failed';
  if (row.outcome === 'denied' && ACCESS_ACTIONS.has(row.action)) return 'access.refused';
  if (row.outcome !== 'allowed') return null;
  if (row.action === 'manifest.get') return row.httpStatus === 304 ? 'pull.checked' : 'pull.manifest';
  if (row.action === 'manifest.head') return isTagReference(row.reference) ? 'pull.checked' : null;
  if (row.action === 'download' && row.httpStatus !== null && row.httpStatus < 300 && row.bytes !== 0)
    return 'download.file';
  return null;
}

/** The CloudEvent of an audit row (its id is the row's), or null when the row is no event. */
export function eventFromAuditRow(row: AuditEvent, source: string): OutboxDraft | null {
  const type = eventTypeOf(row);
  if (!type) return null;
  const member = row.memberId || row.username ? { id: row.memberId, username: row.username } : null;
  const data: Record<string, unknown> = { member, requestId: row.requestId };
  let pullKey: string | null = null;
  switch (type) {
    case 'pull.manifest':
    case 'pull.checked': {
      const tag = pullTag(row);
      Object.assign(data, {
        repository: row.repository,
        reference: row.reference,
        tag,
        digest: row.digest,
        cache: row.cache,
        clientIp: row.clientIp,
        userAgent: row.userAgent,
      });
      if (row.memberId && row.repository && tag) pullKey = `${row.memberId}\n${row.repository}\n${tag}`;
      break;
    }
    case 'download.file':
      Object.assign(data, {
        target: row.repository,
        file: row.reference,
        digest: row.digest,
        bytes: row.bytes,
        cache: row.cache,
        httpStatus: row.httpStatus,
        clientIp: row.clientIp,
        userAgent: row.userAgent,
      });
      break;
    case 'access.refused':
    case 'limit.hit':
    case 'login.refused':
    case 'upstream.failed':
      Object.assign(data, {
        action: row.action,
        repository: row.repository,
        reference: row.reference,
        digest: row.digest,
        reason: row.reason,
        httpStatus: row.httpStatus,
        clientIp: row.clientIp,
        userAgent: row.userAgent,
      });
      if (type === 'upstream.failed') data.upstreamStatus = row.upstreamStatus;
      break;
    case 'login.issued':
      Object.assign(data, { clientIp: row.clientIp, userAgent: row.userAgent });
      break;
    case 'entitlement.expiring':
      Object.assign(data, { repository: row.repository, ...pick(row.details, EXPIRY_DETAILS) });
      break;
    default:
      Object.assign(data, { repository: row.repository, ...pick(row.details, CHANGE_DETAILS) });
      data.actor = data.actor ?? (row.action.startsWith('cli.') ? 'cli' : 'admin_token');
  }
  const event: CloudEvent = {
    specversion: '1.0',
    id: row.id,
    source,
    type,
    time: row.occurredAt.toISOString(),
    datacontenttype: 'application/json',
    data,
  };
  if (row.username) event.subject = row.username;
  return { event, memberId: row.memberId, repository: row.repository, pullKey };
}
