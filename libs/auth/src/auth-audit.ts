import { AuditService } from '@gatehouse/audit';
import { RequestContext } from '@gatehouse/observability';

export type AuthAuditAction =
  'token.issue' | 'token.refuse' | 'registry.auth.refuse' | 'download.auth.refuse';

export interface AuthAuditEvent {
  action: AuthAuditAction;
  outcome: 'allowed' | 'denied';
  reason?: string | null;
  httpStatus: number;
  memberId?: string | null;
  username?: string | null;
  startedAt: number;
  details: Record<string, unknown>;
}

/** Writes one audit row for an authentication decision, with the request's id, IP and agent. */
export function recordAuthEvent(audit: AuditService, event: AuthAuditEvent): void {
  const ctx = RequestContext.current();
  audit.record({
    requestId: ctx?.requestId ?? null,
    clientIp: ctx?.clientIp ?? null,
    userAgent: ctx?.userAgent ?? null,
    memberId: event.memberId ?? null,
    username: event.username ?? null,
    action: event.action,
    outcome: event.outcome,
    reason: event.reason ?? null,
    httpStatus: event.httpStatus,
    durationMs: Math.max(0, Math.round(performance.now() - event.startedAt)),
    details: event.details,
  });
}
