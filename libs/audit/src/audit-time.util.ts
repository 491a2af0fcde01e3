/** A time given on the command line or in a query string that is neither a date nor a duration. */
export class AuditTimeError extends Error {
  constructor(readonly value: string) {
    super(
      `"${value}" is not a time: use a duration back from now (30m, 6h, 1d, 2w) or an ISO date or date-time (2026-03-01, 2026-03-01T12:00:00Z)`,
    );
    this.name = 'AuditTimeError';
  }
}

const UNIT_MS: Record<string, number> = {
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 7 * 86_400_000,
};

/**
 * Parses a `--since` / `--until` value: a duration counted back from `now` (`30m`, `6h`, `1d`,
 * `2w`, `45s`), a date (`2026-03-01`, midnight UTC) or a date-time (`2026-03-01T12:00:00Z`;
 * without a zone it is read as UTC, so the answer does not depend on the machine's zone).
 */
export function parseAuditTime(value: string, now: Date = new Date()): Date {
  const v = value.trim();
  const duration = /^(\d+)\s*([smhdw])$/i.exec(v);
  if (duration) return new Date(now.getTime() - Number(duration[1]) * UNIT_MS[duration[2].toLowerCase()]);
  if (/^\d{4}-\d{2}-\d{2}$/.test(v)) return checked(new Date(`${v}T00:00:00Z`), value);
  const dateTime = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$/i.exec(v);
  if (dateTime) {
    const iso = v.replace(' ', 'T');
    return checked(new Date(dateTime[3] ? iso : `${iso}Z`), value);
  }
  throw new AuditTimeError(value);
}

function checked(d: Date, value: string): Date {
  if (Number.isNaN(d.getTime())) throw new AuditTimeError(value);
  return d;
}
