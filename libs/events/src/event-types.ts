/** Every event type (dev-docs/events.md has an example payload of each). */
export const EVENT_TYPES = [
  'pull.manifest',
  'pull.checked',
  'download.file',
  'access.refused',
  'login.issued',
  'login.refused',
  'limit.hit',
  'upstream.failed',
  'entitlement.expiring',
  'member.created',
  'member.disabled',
  'member.enabled',
  'key.created',
  'key.revoked',
  'entitlement.granted',
  'entitlement.revoked',
] as const;

export type EventType = (typeof EVENT_TYPES)[number];

export function isEventType(v: string): v is EventType {
  return (EVENT_TYPES as readonly string[]).includes(v);
}

/** A type filter entry: an exact type, a prefix ending in `.*` (`member.*`), or `*`. */
export function eventTypeFilterProblem(entry: string): string | null {
  if (entry === '*' || isEventType(entry)) return null;
  if (entry.endsWith('.*') && EVENT_TYPES.some((t) => t.startsWith(entry.slice(0, -1)))) return null;
  return `unknown event type ${JSON.stringify(entry)}: one of ${EVENT_TYPES.join(', ')}, a prefix like member.*, or *`;
}

export function typeMatches(filter: readonly string[], type: string): boolean {
  return filter.some((f) => f === '*' || f === type || (f.endsWith('.*') && type.startsWith(f.slice(0, -1))));
}

/** CloudEvents 1.0, JSON structured mode. */
export interface CloudEvent<T = Record<string, unknown>> {
  specversion: '1.0';
  id: string;
  source: string;
  type: EventType;
  /** The member the event concerns (username), when there is one. */
  subject?: string;
  time: string;
  datacontenttype: 'application/json';
  data: T;
}
