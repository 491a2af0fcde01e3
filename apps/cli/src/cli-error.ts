import { ConfigValidationError } from '@gatehouse/config/errors';

/** A failure worded for the operator; `exitCode` 2 means bad usage or configuration. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

interface PgLikeError {
  code?: string;
  address?: string;
  port?: number;
  hostname?: string;
}

/** One line that says what failed and, for the common cases, what to do about it. */
export function describeError(e: unknown): string {
  if (e instanceof ConfigValidationError) return e.message;
  // Not instanceof Error: errors raised by Node's own modules may come from another realm.
  if (!isErrorLike(e)) return String(e);
  const pg = e as Error & PgLikeError;
  const where = pg.address ? ` at ${pg.address}${pg.port ? `:${pg.port}` : ''}` : '';
  switch (pg.code) {
    case 'ECONNREFUSED':
      return `Cannot connect to the database${where} (connection refused). Fix: check DATABASE_URL and that PostgreSQL is running.`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `Cannot resolve the database host ${pg.hostname ?? ''}. Fix: check the host in DATABASE_URL.`.replace(
        '  ',
        ' ',
      );
    case 'ETIMEDOUT':
      return `Timed out connecting to the database${where}. Fix: check DATABASE_URL and the network path to PostgreSQL.`;
    case '28P01':
    case '28000':
      return `The database refused the credentials in DATABASE_URL (${e.message}).`;
    case '3D000':
      return `${e.message}. Fix: create the database or correct its name in DATABASE_URL.`;
    default:
      return e.message.split('\n')[0] || e.name;
  }
}

export function isErrorLike(e: unknown): e is Error {
  return typeof e === 'object' && e !== null && typeof (e as Error).message === 'string';
}
