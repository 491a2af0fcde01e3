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
  /** Request ids starting with this text (the short ids the CLI table shows). Not indexed. */
  requestIdPrefix?: string;
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
    if (filters.requestIdPrefix !== undefined)
      q.andWhere("e.request_id LIKE :requestIdPrefix ESCAPE '\\'", {
        requestIdPrefix: filters.requestIdPrefix.replace(/[\\%_]/g, (c) => `\\${c}`) + '%',
      });
    if (filters.clientIp !== undefined) q.andWhere('e.client_ip = :clientIp', { clientIp: filters.clientIp });
    if (filters.since !== undefined) q.andWhere('e.occurred_at >= :since', { since: filters.since });
    if (filters.until !== undefined) q.andWhere('e.occurred_at < :until', { until: filters.until });
    const limit = Math.min(Math.max(1, Math.floor(filters.limit ?? 100)), AUDIT_QUERY_MAX_LIMIT);
    return q.orderBy('e.occurred_at', 'DESC').addOrderBy('e.id', 'DESC').limit(limit).getMany();
  }

  /**
   * The events that explain a member's access to one repository (`gatehouse explain`): its
   * refusals (denied or error, with their reason codes) first, newest first, counting the
   * username's refused logins, which name no repository; then its latest allowed events there.
   */
  async explainEvents(
    who: { username: string; memberId?: string | null },
    repository: string,
    limits: { refusals?: number; allowed?: number } = {},
  ): Promise<AuditEvent[]> {
    const base = () => {
      const q = this.dataSource.getRepository(AuditEvent).createQueryBuilder('e');
      if (who.memberId)
        q.where('(e.username = :username OR e.member_id = :memberId)', {
          username: who.username.toLowerCase(),
          memberId: who.memberId,
        });
      else q.where('e.username = :username', { username: who.username.toLowerCase() });
      return q;
    };
    const newest = (q: ReturnType<typeof base>, limit: number) =>
      q.orderBy('e.occurred_at', 'DESC').addOrderBy('e.id', 'DESC').limit(limit).getMany();
    const refusals = await newest(
      base()
        .andWhere("e.outcome <> 'allowed'")
        .andWhere("(e.repository = :repository OR (e.repository IS NULL AND e.action LIKE 'token.%'))", {
          repository,
        }),
      limits.refusals ?? 5,
    );
    const allowed = await newest(
      base().andWhere("e.outcome = 'allowed'").andWhere('e.repository = :repository', { repository }),
      limits.allowed ?? 3,
    );
    return [...refusals, ...allowed];
  }
}
