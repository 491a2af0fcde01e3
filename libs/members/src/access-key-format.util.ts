import { randomBytes } from 'node:crypto';

/**
 * Access keys are `ghk_` followed by 32 random bytes in base64url (43 characters, no padding).
 * The prefix makes a leaked key recognisable to secret scanners and to the log scrubber; the
 * 256 random bits make guessing hopeless, which is why a fast keyed hash is enough to store them.
 */
export const ACCESS_KEY_PREFIX = 'ghk_';
export const ACCESS_KEY_RANDOM_BYTES = 32;
export const ACCESS_KEY_REGEXP = /^ghk_[A-Za-z0-9_-]{43}$/;
/** How many characters of a key listings show: enough to tell keys apart, useless to an attacker. */
export const ACCESS_KEY_DISPLAY_LENGTH = ACCESS_KEY_PREFIX.length + 8;

export function generateAccessKey(): string {
  return ACCESS_KEY_PREFIX + randomBytes(ACCESS_KEY_RANDOM_BYTES).toString('base64url');
}

export function isWellFormedAccessKey(value: string): boolean {
  return ACCESS_KEY_REGEXP.test(value);
}

export function accessKeyDisplayPrefix(key: string): string {
  return key.slice(0, ACCESS_KEY_DISPLAY_LENGTH);
}

/**
 * Usernames are stored and compared lowercase. They travel in HTTP Basic credentials, so a
 * colon is impossible; the grammar is kept to what is safe in a log line, a URL and a shell.
 */
export const USERNAME_REGEXP = /^[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?$/;

export function normalizeUsername(username: string): string {
  return username.trim().toLowerCase();
}

/** Null when the (normalised) username is acceptable, else a sentence that names the fix. */
export function usernameProblem(username: string): string | null {
  const u = normalizeUsername(username);
  if (u.length === 0) return 'the username is empty';
  if (u.length > 64) return `the username is ${u.length} characters long; at most 64 are allowed`;
  if (!USERNAME_REGEXP.test(u)) {
    return `"${u}" is not a valid username: use lowercase letters, digits, ".", "_" and "-", starting and ending with a letter or digit`;
  }
  return null;
}
