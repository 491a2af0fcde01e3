import { parseDuration } from '@gatehouse/observability/duration';
import { MembersError } from './members.exception';

const DAY_MS = 86_400_000;
/** The latest expiry accepted: a four-digit year, as the audit's time filters. */
const MAX_EXPIRY = Date.parse('9999-12-31T23:59:59.999Z');

/**
 * Parses an operator's `--expires` value: an ISO date (`2026-12-31`, valid through that day,
 * UTC), an ISO date-time with a zone (`2026-12-31T18:00:00Z`), or a duration from now
 * (`30d`, `12h`, `90m`, `2w`: `parseDuration`). The result must lie in the future, within year 9999.
 */
export function parseExpiry(text: string, now: Date): Date {
  const value = text.trim();
  let at: Date | null = null;
  const duration = parseDuration(value);
  if (duration !== null) {
    at = new Date(now.getTime() + duration);
  } else if (/^\d{4}-\d{2}-\d{2}$/.test(value)) {
    const start = Date.parse(`${value}T00:00:00Z`);
    // A date means "through that day": the key or grant dies at the following midnight UTC.
    if (!Number.isNaN(start) && new Date(start).toISOString().startsWith(value))
      at = new Date(start + DAY_MS);
  } else if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(value)) {
    const ms = Date.parse(value);
    if (!Number.isNaN(ms)) at = new Date(ms);
  }
  if (at === null) {
    throw new MembersError(
      'expiry_invalid',
      `"${text}" is not an expiry. Use a date (2026-12-31, valid through that day UTC), a date-time with a zone (2026-12-31T18:00:00Z) or a duration (30d, 12h, 2w)`,
    );
  }
  if (!(at.getTime() <= MAX_EXPIRY)) {
    throw new MembersError(
      'expiry_invalid',
      `"${text.slice(0, 64)}" is too far away: give a date before year 10000`,
    );
  }
  if (at.getTime() <= now.getTime()) {
    throw new MembersError('expiry_invalid', `the expiry ${at.toISOString()} is in the past`);
  }
  return at;
}
