import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { AuditEvent } from './audit-event.entity';
import {
  AuditQueryFilters,
  AuditSqlRunner,
  ExplainEvents,
  findAuditEvents,
  findExplainEvents,
} from './audit-query.sql';

/**
 * Reads the audit log for support and tests; newest events first. The statements live in
 * audit-query.sql.ts, shared with the CLI's read-only path, which runs them without Nest.
 */
@Injectable()
export class AuditQueryService {
  private readonly run: AuditSqlRunner;

  constructor(dataSource: DataSource) {
    this.run = (sql) => dataSource.query(sql.text, sql.values);
  }

  find(filters: AuditQueryFilters = {}): Promise<AuditEvent[]> {
    return findAuditEvents(this.run, filters);
  }

  /**
   * The events that explain a member's access to one target (`gatehouse explain`): its refusals
   * there (denied or error, with their reason codes) first, newest first, then its latest allowed
   * events there; and apart, the refused logins of the member or its username, which name no target.
   */
  explainEvents(
    who: { username: string; memberId?: string | null },
    repository: string,
    limits: { refusals?: number; allowed?: number; logins?: number } = {},
  ): Promise<ExplainEvents> {
    return findExplainEvents(this.run, who, repository, limits);
  }
}
