import { OciError, OciErrorTranslator } from '@gatehouse/oci';

/**
 * Errors that mean "PostgreSQL cannot be reached right now" (refused, reset, shut down, pool
 * timeout), as opposed to a bad query. Requests that fail this way are answered 503 UNAVAILABLE
 * with Retry-After: the gateway fails closed while the database is down and recovers by itself.
 */
const UNAVAILABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  // SQLSTATE class 08 (connection exception), 57P0x (shutdown, crash recovery), 53300 (too many connections)
  '08000',
  '08001',
  '08003',
  '08004',
  '08006',
  '57P01',
  '57P02',
  '57P03',
  '53300',
]);

const UNAVAILABLE_MESSAGES =
  /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|Connection is closed|the database system is (starting up|shutting down)/i;

export function isDatabaseUnavailableError(err: unknown): boolean {
  let current: unknown = err;
  for (let depth = 0; depth < 4 && current && typeof current === 'object'; depth++) {
    const e = current as {
      code?: unknown;
      message?: unknown;
      driverError?: unknown;
      cause?: unknown;
      errors?: unknown;
    };
    if (typeof e.code === 'string' && UNAVAILABLE_CODES.has(e.code)) return true;
    if (typeof e.message === 'string' && UNAVAILABLE_MESSAGES.test(e.message)) return true;
    // net's AggregateError (several addresses refused) carries the real errors in `errors`.
    if (Array.isArray(e.errors) && e.errors.some((x) => isDatabaseUnavailableError(x))) return true;
    current = e.driverError ?? e.cause;
  }
  return false;
}

/** Long enough for a database restart or fail-over, short enough that pulls resume promptly. */
export const DATABASE_RETRY_AFTER_SECONDS = 5;

/** What a member reads: why, and that retrying is the answer. */
export const DATABASE_UNAVAILABLE_MESSAGE =
  'the gateway cannot reach its database, so it cannot check credentials or access right now; retry in a few seconds';

/** The member-facing form of an unreachable database (an OciErrorTranslator for `toOciError`). */
export const databaseUnavailableOciError: OciErrorTranslator = (err) =>
  isDatabaseUnavailableError(err)
    ? new OciError('UNAVAILABLE', {
        message: DATABASE_UNAVAILABLE_MESSAGE,
        headers: { 'Retry-After': String(DATABASE_RETRY_AFTER_SECONDS) },
        reason: 'database_unavailable',
        cause: err,
      })
    : null;
