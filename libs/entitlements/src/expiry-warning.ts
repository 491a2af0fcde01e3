/**
 * The `Warning: 299` a customer's client shows (the distribution spec asks clients to print it):
 * one text per reason, several reasons joined as RFC 7234 allows.
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

/** The `Warning` header for these warnings (nulls left out), or no header at all. */
export function warningHeader(...warnings: Array<string | null | undefined>): Record<string, string> {
  const present = warnings.filter((w): w is string => !!w);
  return present.length ? { Warning: present.join(', ') } : {};
}
