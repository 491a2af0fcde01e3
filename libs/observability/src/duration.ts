const UNIT_MS: Record<string, number> = {
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 7 * 86_400_000,
};

/** A count, an optional space, one unit: `45s`, `30m`, `6h`, `30d`, `2w` (units in any case). */
const DURATION = /^(\d+)\s*([smhdw])$/i;

/**
 * The one duration grammar of the gateway (access key and entitlement expiries, audit filters):
 * the length in milliseconds, or null when `text` is no duration. Months and years are left
 * out on purpose (their length depends on the date); give a date instead. The caller checks the
 * resulting time is in its range (a huge count is a number here, not a valid date there).
 */
export function parseDuration(text: string): number | null {
  const match = DURATION.exec(text.trim());
  return match ? Number(match[1]) * UNIT_MS[match[2].toLowerCase()] : null;
}
