import {
  CallHandler,
  ExecutionContext,
  HttpException,
  HttpStatus,
  Injectable,
  NestInterceptor,
} from '@nestjs/common';
import { catchError, Observable, throwError } from 'rxjs';
import { AuditTimeError } from '@gatehouse/audit';
import { EntitlementsError } from '@gatehouse/entitlements';
import { WebhookNotFound, WebhookTargetError } from '@gatehouse/events';
import { MembersError } from '@gatehouse/members';

/** The one table from domain error codes to HTTP statuses (the admin API and the console). */
export const STATUS: Record<string, HttpStatus> = {
  username_invalid: HttpStatus.BAD_REQUEST,
  expiry_invalid: HttpStatus.BAD_REQUEST,
  repository_invalid: HttpStatus.BAD_REQUEST,
  tag_rule_invalid: HttpStatus.BAD_REQUEST,
  member_not_found: HttpStatus.NOT_FOUND,
  access_key_not_found: HttpStatus.NOT_FOUND,
  entitlement_not_found: HttpStatus.NOT_FOUND,
  member_exists: HttpStatus.CONFLICT,
  access_key_ambiguous: HttpStatus.CONFLICT,
};

const ERROR_NAMES: Partial<Record<HttpStatus, string>> = {
  [HttpStatus.BAD_REQUEST]: 'Bad Request',
  [HttpStatus.UNAUTHORIZED]: 'Unauthorized',
  [HttpStatus.NOT_FOUND]: 'Not Found',
  [HttpStatus.CONFLICT]: 'Conflict',
};

/** The body every admin error has, like Nest's validation errors: `{statusCode, error, message[]}`. */
export function adminHttpError(status: HttpStatus, message: string, code?: string): HttpException {
  return new HttpException(
    {
      statusCode: status,
      error: ERROR_NAMES[status] ?? 'Error',
      message: [message],
      ...(code ? { code } : {}),
    },
    status,
  );
}

/**
 * Domain errors (the same ones the CLI prints) become admin HTTP errors; the gateway's exception
 * filter passes HttpExceptions on non-registry paths through as they are.
 */
@Injectable()
export class AdminErrorsInterceptor implements NestInterceptor {
  intercept(_context: ExecutionContext, next: CallHandler): Observable<unknown> {
    return next.handle().pipe(
      catchError((e: unknown) => {
        if (e instanceof MembersError || e instanceof EntitlementsError) {
          return throwError(() =>
            adminHttpError(STATUS[e.code] ?? HttpStatus.BAD_REQUEST, e.message, e.code),
          );
        }
        if (e instanceof WebhookTargetError)
          return throwError(() => adminHttpError(HttpStatus.BAD_REQUEST, e.message, 'webhook_invalid'));
        if (e instanceof WebhookNotFound)
          return throwError(() => adminHttpError(HttpStatus.NOT_FOUND, e.message, 'webhook_not_found'));
        if (e instanceof AuditTimeError)
          return throwError(() => adminHttpError(HttpStatus.BAD_REQUEST, e.message));
        return throwError(() => e);
      }),
    );
  }
}
