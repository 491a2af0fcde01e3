import type { INestApplicationContext } from '@nestjs/common';
import { userInfo } from 'node:os';
import { AuditService } from '@gatehouse/audit';

/** Who ran the CLI: the operating-system user (the CLI has no sign-in of its own). */
function operator(): string {
  try {
    return userInfo().username;
  } catch {
    return 'unknown';
  }
}

/**
 * One audit row per change made with the CLI (`cli.<resource>.<verb>`), like the admin API's
 * `admin.*` rows; its event (member.*, key.*, entitlement.*) names the actor `cli` and the user.
 * Written before the CLI's Nest context closes, which flushes the audit queue.
 */
export function cliChanged(
  app: INestApplicationContext,
  action: string,
  subject: { memberId?: string | null; username?: string | null; repository?: string | null },
  details: Record<string, unknown> = {},
): void {
  app.get(AuditService).record({
    action,
    outcome: 'allowed',
    memberId: subject.memberId ?? null,
    username: subject.username ?? null,
    repository: subject.repository ?? null,
    details: { actor: 'cli', operator: operator(), ...details },
  });
}
