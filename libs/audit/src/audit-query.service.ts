import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { AuditEvent } from './audit-event.entity';

/**
 * Filters of an audit search; every one given must match. Shared by `gatehouse audit` and the
 * admin API: new filters are added as optional fields, existing ones keep their meaning.
 */
export interface AuditQueryFilters {
  /** Attempted or known username (case-insensitive). */
  username?: string;
  memberId?: string;
  repository?: string;
  action?: string;
  outcome?: string;
  reason?: string;
  requestId?: string;
  /** Client IP as recorded (X-Forwarded-For only from trusted proxies). */
  clientIp?: string;
  /** Inclusive lower bound on occurredAt. */
  since?: Date;
  /** Exclusive upper bound on occurredAt. */
  until?: Date;
  /** Default 100, at most 10 000. */
  limit?: number;
}

export const AUDIT_QUERY_MAX_LIMIT = 10_000;

/** Reads the audit log for support and tests; newest events first. */
@Injectable()
export class AuditQueryService {
  constructor(private readonly dataSource: DataSource) {}

  find(filters: AuditQueryFilters = {}): Promise<AuditEvent[]> {
    const q = this.dataSource.getRepository(AuditEvent).createQueryBuilder('e');
    if (filters.username !== undefined)
      q.andWhere('e.username = :username', { username: filters.username.toLowerCase() });
    if (filters.memberId !== undefined) q.andWhere('e.member_id = :memberId', { memberId: filters.memberId });
    if (filters.repository !== undefined)
      q.andWhere('e.repository = :repository', { repository: filters.repository });
    if (filters.action !== undefined) q.andWhere('e.action = :action', { action: filters.action });
    if (filters.outcome !== undefined) q.andWhere('e.outcome = :outcome', { outcome: filters.outcome });
    if (filters.reason !== undefined) q.andWhere('e.reason = :reason', { reason: filters.reason });
    if (filters.requestId !== undefined)
      q.andWhere('e.request_id = :requestId', { requestId: filters.requestId });
    if (filters.clientIp !== undefined) q.andWhere('e.client_ip = :clientIp', { clientIp: filters.clientIp });
    if (filters.since !== undefined) q.andWhere('e.occurred_at >= :since', { since: filters.since });
    if (filters.until !== undefined) q.andWhere('e.occurred_at < :until', { until: filters.until });
    const limit = Math.min(Math.max(1, Math.floor(filters.limit ?? 100)), AUDIT_QUERY_MAX_LIMIT);
    return q.orderBy('e.occurred_at', 'DESC').addOrderBy('e.id', 'DESC').limit(limit).getMany();
  }
}
