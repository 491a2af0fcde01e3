import { ArgumentsHost, Catch, ExceptionFilter, HttpException } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { AppLogger } from '@gatehouse/observability';
import { AuditTimeError } from '@gatehouse/audit';
import { EntitlementsError } from '@gatehouse/entitlements';
import { WebhookNotFound, WebhookTargetError } from '@gatehouse/events';
import { MembersError } from '@gatehouse/members';
import { STATUS } from '../admin/admin-errors.interceptor';
import { errorBox, layout } from './console-html';
import { securityHeaders, sendHtml } from './console-http';

/** Status and message of an error the console answers as is; null for an unexpected one. */
export function knownError(error: unknown): { status: number; message: string } | null {
  if (error instanceof HttpException) {
    const body = error.getResponse();
    const m = typeof body === 'object' && body !== null ? (body as { message?: unknown }).message : body;
    return {
      status: error.getStatus(),
      message: Array.isArray(m) ? m.join('; ') : String(m ?? error.message),
    };
  }
  if (error instanceof MembersError || error instanceof EntitlementsError)
    return { status: STATUS[error.code] ?? 400, message: error.message };
  if (error instanceof AuditTimeError || error instanceof WebhookTargetError)
    return { status: 400, message: error.message };
  if (error instanceof WebhookNotFound) return { status: 404, message: error.message };
  return null;
}

/**
 * The console's one error table: a page for a browser (a sign-in redirect when signed out), JSON
 * for the console's own scripts (`Accept: application/json`). Domain errors keep their message.
 */
@Catch()
export class ConsoleErrorsFilter implements ExceptionFilter {
  constructor(private readonly logger: AppLogger) {}

  catch(error: unknown, host: ArgumentsHost): void {
    const request = host.switchToHttp().getRequest<FastifyRequest>();
    const reply = host.switchToHttp().getResponse<FastifyReply>();
    const known = knownError(error);
    const { status, message } = known ?? {
      status: 500,
      message: 'the console failed; the gateway log has the details',
    };
    if (!known) this.logger.error({ err: error, url: request.url }, 'console: unexpected error');
    const wantsJson = String(request.headers.accept ?? '').includes('application/json');
    if (status === 401 && request.method === 'GET' && !wantsJson) {
      void securityHeaders(reply).redirect('/console/login', 303);
      return;
    }
    if (wantsJson) {
      void securityHeaders(reply).status(status).send({ statusCode: status, message });
      return;
    }
    sendHtml(reply, layout('Something went wrong', errorBox(message), null), status);
  }
}
