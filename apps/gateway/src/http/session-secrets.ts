import { createHash, randomBytes } from 'node:crypto';

/**
 * What the console's and the portal's server-side sessions share: a cookie secret is 32 random
 * bytes, a row holds only its SHA-256, and PostgreSQL's `UPDATE/DELETE … RETURNING` answer is read
 * the one way TypeORM gives it.
 */

/** A new secret for a cookie or a CSRF token (256 bits, URL-safe). */
export const newSessionSecret = (): string => randomBytes(32).toString('base64url');

/** What a session row stores of a cookie secret. */
export const sessionSecretHash = (secret: string): string =>
  createHash('sha256').update(secret, 'utf8').digest('hex');

/** A longer cookie value is no session of ours: refused before it is hashed. */
export const MAX_SESSION_COOKIE_LENGTH = 200;

/** TypeORM answers UPDATE/DELETE … RETURNING on PostgreSQL with `[rows, affected]`. */
export function firstReturnedRow(result: unknown): Record<string, string> | undefined {
  const rows = Array.isArray(result) && Array.isArray(result[0]) ? result[0] : result;
  return Array.isArray(rows) ? (rows[0] as Record<string, string> | undefined) : undefined;
}
