import { Injectable } from '@nestjs/common';
import { AuditService } from '@gatehouse/audit';

/**
 * One audit row per change made through the admin API (`admin.<resource>.<verb>`), filed under
 * the member it concerns so `gatehouse audit --member alice` shows who changed what. The admin
 * token and key secrets never appear in it.
 */
@Injectable()
export class AdminAuditRecorder {
  constructor(private readonly audit: AuditService) {}

  changed(
    action: string,
    subject: { memberId?: string | null; username?: string | null; repository?: string | null },
    httpStatus: number,
    details: Record<string, unknown> = {},
  ): void {
    this.audit.record({
      action,
      outcome: 'allowed',
      httpStatus,
      memberId: subject.memberId ?? null,
      username: subject.username ?? null,
      repository: subject.repository ?? null,
      details: { actor: 'admin_token', ...details },
    });
  }
}
