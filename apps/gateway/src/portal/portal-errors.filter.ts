import { ArgumentsHost, Catch, ExceptionFilter } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { AppLogger } from '@gatehouse/observability';
import { knownError } from '../console/console-errors.filter';
import { errorBox } from '../console/console-html';
import { securityHeaders, sendHtml } from '../console/console-http';
import { portalLayout } from './portal-html';

/** The portal's errors: a signed-out page view goes to sign-in; anything else is a page with its message. */
@Catch()
export class PortalErrorsFilter implements ExceptionFilter {
  constructor(private readonly logger: AppLogger) {}

  catch(error: unknown, host: ArgumentsHost): void {
    const request = host.switchToHttp().getRequest<FastifyRequest>();
    const reply = host.switchToHttp().getResponse<FastifyReply>();
    const known = knownError(error);
    const { status, message } = known ?? { status: 500, message: 'the portal failed; please retry later' };
    if (!known) this.logger.error({ err: error, url: request.url }, 'portal: unexpected error');
    if (status === 401 && request.method === 'GET') {
      void securityHeaders(reply).redirect('/portal/login', 303);
      return;
    }
    sendHtml(reply, portalLayout('Something went wrong', errorBox(message), null), status);
  }
}
