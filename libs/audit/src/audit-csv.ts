import { stringify } from 'csv-stringify/sync';
import type { AuditEvent } from './audit-event.entity';

/** Every stored field, in the order of the CSV header and the JSON objects. */
export const AUDIT_FIELDS = [
  'id',
  'occurredAt',
  'requestId',
  'clientRequestId',
  'clientMemberTag',
  'memberId',
  'username',
  'clientIp',
  'userAgent',
  'action',
  'repository',
  'reference',
  'digest',
  'outcome',
  'reason',
  'httpStatus',
  'bytes',
  'cache',
  'durationMs',
  'upstreamStatus',
  'details',
] as const satisfies ReadonlyArray<keyof AuditEvent>;

/** First characters a spreadsheet reads as the start of a formula (OWASP "CSV Injection"). */
const FORMULA_START = /^[=+\-@\t\r]/;

/**
 * A CSV cell a spreadsheet will not evaluate: a cell starting with `= + - @`, tab or carriage
 * return gets a leading single quote (OWASP's advice; the writer quotes every cell). Other cells
 * are unchanged, so the CSV still carries the stored values.
 */
export function csvSafe(text: string): string {
  return FORMULA_START.test(text) ? `'${text}` : text;
}

/** A stored value as one cell's text: dates in ISO 8601 UTC, objects as JSON. */
export function auditCell(value: unknown): string {
  if (value === null || value === undefined) return '';
  if (value instanceof Date) return value.toISOString();
  if (Array.isArray(value)) return value.map(auditCell).join(', ');
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

/**
 * Every field as text, every cell quoted; a cell a spreadsheet would evaluate as a formula
 * (`=cmd|...`, `@SUM(...)`, `+1`) is prefixed with a single quote (csvSafe). The CLI's
 * `--format csv` and the console's export both write this.
 */
export function auditCsv(events: readonly AuditEvent[]): string {
  return stringify(
    events.map((e) => AUDIT_FIELDS.map((f) => csvSafe(auditCell(e[f])))),
    { header: true, columns: [...AUDIT_FIELDS], quoted: true, quoted_empty: false },
  );
}
