import { createHash, timingSafeEqual } from 'node:crypto';
import {
  CanActivate,
  createParamDecorator,
  ExecutionContext,
  HttpException,
  Injectable,
  SetMetadata,
} from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { FastifyRequest } from 'fastify';
import { isCrossSite, readCookie, SESSION_COOKIE } from './console-http';
import { ConsoleSessionStore, StaffSession } from './console-session.store';

/** A console refusal: the console's error filter renders it as a page (or JSON for scripts). */
export class ConsoleRefusal extends HttpException {
  constructor(
    status: number,
    message: string,
    readonly reason: string,
  ) {
    super({ statusCode: status, message, reason }, status);
  }
}

const ADMIN_ONLY = 'gatehouse:console-admin-only';
/** Only the admin role may call this route; support staff get 403 (and never see its button). */
export const AdminOnly = () => SetMetadata(ADMIN_ONLY, true);

type ConsoleRequest = FastifyRequest & { staff?: StaffSession };

/** The signed-in staff member of this request (set by ConsoleGuard). */
export const Staff = createParamDecorator(
  (_: unknown, ctx: ExecutionContext): StaffSession => ctx.switchToHttp().getRequest<ConsoleRequest>().staff!,
);

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

/** True when the request carries this session's CSRF token (form field `_csrf` or X-CSRF-Token). */
export function carriesCsrfToken(request: FastifyRequest, session: StaffSession): boolean {
  const body = request.body as Record<string, unknown> | undefined;
  const sent = (body && typeof body === 'object' ? body._csrf : undefined) ?? request.headers['x-csrf-token'];
  if (typeof sent !== 'string') return false;
  return timingSafeEqual(digest(sent), digest(session.csrfToken));
}

/**
 * Every console route but sign-in: a live session (401, or a redirect to sign-in for a page),
 * and on every write a same-site request with the session's CSRF token (403). Admin-only routes
 * refuse support staff (403).
 */
@Injectable()
export class ConsoleGuard implements CanActivate {
  constructor(
    private readonly sessions: ConsoleSessionStore,
    private readonly reflector: Reflector,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const request = context.switchToHttp().getRequest<ConsoleRequest>();
    const session = await this.sessions.touch(readCookie(request, SESSION_COOKIE));
    if (!session) throw new ConsoleRefusal(401, 'sign in to use the console', 'console_signed_out');
    const write = request.method !== 'GET' && request.method !== 'HEAD';
    if (write && (isCrossSite(request) || !carriesCsrfToken(request, session))) {
      throw new ConsoleRefusal(
        403,
        'this form is stale or came from another site: reload the page and retry',
        'csrf',
      );
    }
    const adminOnly = this.reflector.getAllAndOverride<boolean>(ADMIN_ONLY, [
      context.getHandler(),
      context.getClass(),
    ]);
    if (adminOnly && session.role !== 'admin') {
      throw new ConsoleRefusal(403, 'only console admins may do this', 'console_role');
    }
    request.staff = session;
    return true;
  }
}
