import { Injectable } from '@nestjs/common';
import { AuditOutcome, AuditService } from '@gatehouse/audit';
import type { StaffSession } from './console-session.store';

/**
 * One audit row per staff action in the console, carrying the staff identity (issuer, subject,
 * name, role). Changes use the admin API's action names (`admin.key.create`, …) with
 * `actor: "console"`, so `gatehouse audit --action` finds them whichever surface made them.
 */
@Injectable()
export class ConsoleAuditRecorder {
  constructor(private readonly audit: AuditService) {}

  record(
    action: string,
    staff: Pick<StaffSession, 'issuer' | 'subject' | 'name' | 'role'> | null,
    outcome: AuditOutcome,
    subject: {
      memberId?: string | null;
      username?: string | null;
      repository?: string | null;
      reason?: string | null;
      httpStatus?: number;
    } = {},
    details: Record<string, unknown> = {},
  ): void {
    this.audit.record({
      action,
      outcome,
      memberId: subject.memberId ?? null,
      username: subject.username ?? null,
      repository: subject.repository ?? null,
      reason: subject.reason ?? null,
      httpStatus: subject.httpStatus ?? 200,
      details: {
        actor: 'console',
        staff: staff && { issuer: staff.issuer, subject: staff.subject, name: staff.name, role: staff.role },
        ...details,
      },
    });
  }
}
