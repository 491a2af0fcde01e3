import { Body, Controller, Get, Post, Req, Res, UseFilters, UseGuards } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { AuditService } from '@gatehouse/audit';
import { TokenService } from '@gatehouse/auth';
import { GatewayConfig } from '@gatehouse/config';
import { normalizeUsername } from '@gatehouse/members';
import { OciError } from '@gatehouse/oci';
import { ConsoleRefusal } from '../console/console.guard';
import { errorBox, esc } from '../console/console-html';
import { clearCookie, isCrossSite, readCookie, sendHtml, setCookie } from '../console/console-http';
import { PortalErrorsFilter } from './portal-errors.filter';
import { portalLayout } from './portal-html';
import { PORTAL_COOKIE, PORTAL_PATH, PortalGuard } from './portal.guard';
import { PortalSessionStore } from './portal-session.store';

const field = (v: unknown, max: number) => (typeof v === 'string' ? v.slice(0, max) : '');

/**
 * Member sign-in with username and access key through the token endpoint's own check
 * (TokenService.authenticate): the same failed-login limits per (username, address) and per
 * address, the same single 401 whatever was wrong, the same audit rows.
 */
@Controller('portal')
@UseFilters(PortalErrorsFilter)
export class PortalAuthController {
  constructor(
    private readonly tokens: TokenService,
    private readonly sessions: PortalSessionStore,
    private readonly config: GatewayConfig,
    private readonly audit: AuditService,
  ) {}

  @Get('login')
  login(@Res() reply: FastifyReply, message?: string, status = 200, username = ''): void {
    const body = `${message ? errorBox(message) : ''}
<form method="post" action="/portal/login" class="card">
  <p>Sign in with the username and access key you use for <code>docker login</code>.</p>
  <label for="username">Username</label>
  <input id="username" name="username" autocomplete="username" required value="${esc(username)}">
  <label for="key">Access key</label>
  <input id="key" name="key" type="password" autocomplete="current-password" required>
  <button type="submit" class="primary">Sign in</button>
</form>`;
    sendHtml(reply, portalLayout('Sign in', body, null), status);
  }

  @Post('login')
  async signIn(
    @Req() request: FastifyRequest,
    @Res() reply: FastifyReply,
    @Body() body: Record<string, unknown> | undefined,
  ): Promise<void> {
    if (isCrossSite(request))
      throw new ConsoleRefusal(403, 'sign-in forms are accepted from this site only', 'csrf');
    const username = field(body?.username, 200).trim();
    const key = field(body?.key, 500).trim();
    try {
      const read = this.tokens.readRequest('POST', undefined, {
        grant_type: 'password',
        username,
        password: key,
      });
      const { member, accessKey } = await this.tokens.authenticate(read);
      const id = await this.sessions.create(member.id, accessKey.id);
      this.audit.record({
        action: 'portal.signin',
        outcome: 'allowed',
        memberId: member.id,
        username: member.username,
        httpStatus: 303,
        details: { accessKeyId: accessKey.id, keyPrefix: accessKey.prefix },
      });
      setCookie(
        request,
        reply,
        PORTAL_COOKIE,
        id,
        this.config.console.sessionMaxSeconds,
        'strict',
        PORTAL_PATH,
      );
      void reply.redirect('/portal/', 303);
    } catch (e) {
      if (!(e instanceof OciError)) throw e;
      // The token endpoint's check wrote its own token.refuse row with the true reason; this one
      // says it was the portal, so `gatehouse audit --action portal.signin` finds both outcomes.
      this.audit.record({
        action: 'portal.signin',
        outcome: 'denied',
        username: normalizeUsername(username).slice(0, 128) || null,
        reason: e.reason ?? 'bad_credentials',
        httpStatus: e.status,
      });
      if (e.code === 'TOOMANYREQUESTS') {
        for (const [k, v] of Object.entries(e.headers)) void reply.header(k, v);
        return this.login(reply, `Too many failed sign-ins: ${e.message}.`, 429, username);
      }
      return this.login(reply, 'That username and access key do not match.', 401, username);
    }
  }

  @Post('logout')
  @UseGuards(PortalGuard)
  async logout(@Req() request: FastifyRequest, @Res() reply: FastifyReply): Promise<void> {
    await this.sessions.destroy(readCookie(request, PORTAL_COOKIE));
    clearCookie(request, reply, PORTAL_COOKIE, PORTAL_PATH);
    void reply.redirect('/portal/login', 303);
  }
}
