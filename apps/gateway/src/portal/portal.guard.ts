import { timingSafeEqual, createHash } from 'node:crypto';
import { CanActivate, createParamDecorator, ExecutionContext, Injectable } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { AccessKey, AccessKeyService, Member } from '@gatehouse/members';
import { ConsoleRefusal } from '../console/console.guard';
import { isCrossSite, readCookie } from '../console/console-http';
import { PortalSession, PortalSessionStore } from './portal-session.store';

export const PORTAL_COOKIE = 'gatehouse_portal';
export const PORTAL_PATH = '/portal/';

/** The signed-in member of a portal request: the principal of every read the portal makes. */
export interface PortalPrincipal {
  session: PortalSession;
  member: Member;
  accessKey: AccessKey;
}

type PortalRequest = FastifyRequest & { portal?: PortalPrincipal };

export const Principal = createParamDecorator(
  (_: unknown, ctx: ExecutionContext): PortalPrincipal =>
    ctx.switchToHttp().getRequest<PortalRequest>().portal!,
);

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

/**
 * Every portal route but sign-in: a live session whose key is still usable (a revoked or expired
 * key, or a disabled member, ends it), and on every write a same-site request with the CSRF token.
 * The member comes from the session only: no route takes a member from the URL.
 */
@Injectable()
export class PortalGuard implements CanActivate {
  constructor(
    private readonly sessions: PortalSessionStore,
    private readonly keys: AccessKeyService,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const request = context.switchToHttp().getRequest<PortalRequest>();
    const cookie = readCookie(request, PORTAL_COOKIE);
    const session = await this.sessions.touch(cookie);
    if (!session) throw new ConsoleRefusal(401, 'sign in to use the portal', 'portal_signed_out');
    const check = await this.keys.checkById(session.accessKeyId, session.memberId);
    if (!check.ok) {
      await this.sessions.destroy(cookie);
      throw new ConsoleRefusal(401, 'sign in to use the portal', 'portal_signed_out');
    }
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      const body = request.body as Record<string, unknown> | undefined;
      const sent =
        (body && typeof body === 'object' ? body._csrf : undefined) ?? request.headers['x-csrf-token'];
      const ok = typeof sent === 'string' && timingSafeEqual(digest(sent), digest(session.csrfToken));
      if (isCrossSite(request) || !ok)
        throw new ConsoleRefusal(
          403,
          'this form is stale or came from another site: reload the page',
          'csrf',
        );
    }
    request.portal = { session, member: check.member, accessKey: check.accessKey };
    return true;
  }
}
