/**
 * The `Warning: 299` a customer's client shows (the distribution spec asks clients to print it):
 * one header line per reason. RFC 7234 allows a comma-joined list too, but clients that print
 * warnings (containers/image) read each header line as one warning.
 */

/** `299 - "<what> expires on <UTC time>"` when `expiresAt` is within `days` of `now`, else null. */
export function expiryWarning(what: string, expiresAt: Date | null, now: Date, days: number): string | null {
  if (!expiresAt || days <= 0) return null;
  const left = expiresAt.getTime() - now.getTime();
  if (left <= 0 || left > days * 86_400_000) return null;
  const text = `${what} expires on ${expiresAt.toISOString().replace(/\.\d{3}Z$/, 'Z')}`.replace(
    /["\\]/g,
    '',
  );
  return `299 - "${text}"`;
}

/** The `Warning` header lines for these warnings (nulls left out, flattened), or no header at all. */
export function warningHeader(
  ...warnings: Array<string | ReadonlyArray<string | null> | null | undefined>
): Record<string, string | string[]> {
  const present = warnings.flat().filter((w): w is string => !!w);
  if (!present.length) return {};
  return { Warning: present.length === 1 ? present[0] : present };
}
