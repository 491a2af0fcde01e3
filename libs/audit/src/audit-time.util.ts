import { parseDuration } from '@gatehouse/observability/duration';

/** A time given on the command line or in a query string that is neither a date nor a duration. */
export class AuditTimeError extends Error {
  constructor(
    readonly value: string,
    outOfRange = false,
  ) {
    super(
      outOfRange
        ? `"${value.slice(0, 64)}" is out of range: times must fall between ${MIN_TIME.toISOString().slice(0, 10)} and ${MAX_TIME.toISOString().slice(0, 10)}`
        : `"${value.slice(0, 64)}" is not a time: use a duration back from now (30m, 6h, 1d, 2w) or an ISO date or date-time (2026-03-01, 2026-03-01T12:00:00Z)`,
    );
    this.name = 'AuditTimeError';
  }
}

/**
 * The times a filter may name: four-digit years, well inside both JavaScript's Date range and
 * PostgreSQL's timestamptz range, so a huge duration (`99999999999999d`) is a clear refusal here
 * instead of an invalid Date or a database "timestamp out of range" error.
 */
const MIN_TIME = new Date('0001-01-01T00:00:00.000Z');
const MAX_TIME = new Date('9999-12-31T23:59:59.999Z');

/**
 * Parses a `--since` / `--until` value: a duration counted back from `now` (`30m`, `6h`, `1d`,
 * `2w`, `45s`), a date (`2026-03-01`, midnight UTC) or a date-time (`2026-03-01T12:00:00Z`;
 * without a zone it is read as UTC, so the answer does not depend on the machine's zone).
 */
export function parseAuditTime(value: string, now: Date = new Date()): Date {
  const v = value.trim();
  const duration = parseDuration(v);
  if (duration !== null) return checked(new Date(now.getTime() - duration), value);
  if (/^\d{4}-\d{2}-\d{2}$/.test(v)) return checked(new Date(`${v}T00:00:00Z`), value);
  const dateTime = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$/i.exec(v);
  if (dateTime) {
    const iso = v.replace(' ', 'T');
    return checked(new Date(dateTime[3] ? iso : `${iso}Z`), value);
  }
  throw new AuditTimeError(value);
}

function checked(d: Date, value: string): Date {
  const t = d.getTime();
  // A duration so large that the Date is invalid is out of range too, not "not a time".
  if (Number.isNaN(t)) throw new AuditTimeError(value, parseDuration(value) !== null);
  if (t < MIN_TIME.getTime() || t > MAX_TIME.getTime()) throw new AuditTimeError(value, true);
  return d;
}
