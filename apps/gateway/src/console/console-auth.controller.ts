import { Body, Controller, Get, Post, Req, Res, UseFilters, UseGuards } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { LoginRateLimiter } from '@gatehouse/auth';
import { GatewayConfig } from '@gatehouse/config';
import { AdminTokenStrategy } from '../admin/admin-token.strategy';
import { ConsoleAuditRecorder } from './console-audit.recorder';
import { ConsoleErrorsFilter } from './console-errors.filter';
import { ConsoleGuard, ConsoleRefusal, Staff } from './console.guard';
import { errorBox, esc, layout } from './console-html';
import {
  clearCookie,
  isCrossSite,
  LOGIN_COOKIE,
  readCookie,
  sendHtml,
  SESSION_COOKIE,
  setCookie,
} from './console-http';
import { ConsoleOidcService, StaffSignInError } from './console-oidc.service';
import {
  ADMIN_TOKEN_ISSUER,
  ConsoleSessionStore,
  LOGIN_STATE_SECONDS,
  StaffSession,
} from './console-session.store';

/** The username the failed-login limiter counts ADMIN_TOKEN guesses under (no member can have it). */
const CONSOLE_ADMIN_LOGIN = '<console admin token>';

/** A page that moves on by itself: after the provider's cross-site redirect, a same-site navigation carries the SameSite=Strict cookie. */
const continueTo = (href: string) =>
  `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="0;url=${esc(href)}">` +
  `<title>Signed in · Gatehouse console</title></head><body><main><p><a href="${esc(href)}">Continue to the console</a></p></main></body></html>`;

/** Staff sign-in and sign-out: OpenID Connect (code + PKCE) and the ADMIN_TOKEN bootstrap. */
@Controller('console')
@UseFilters(ConsoleErrorsFilter)
export class ConsoleAuthController {
  constructor(
    private readonly sessions: ConsoleSessionStore,
    private readonly oidc: ConsoleOidcService,
    private readonly adminToken: AdminTokenStrategy,
    private readonly recorder: ConsoleAuditRecorder,
    private readonly config: GatewayConfig,
    private readonly limiter: LoginRateLimiter,
  ) {}

  @Get('login')
  login(@Res() reply: FastifyReply, message?: string, status = 200): void {
    const parts: string[] = [];
    if (message) parts.push(errorBox(message));
    if (this.oidc.enabled)
      parts.push(
        `<p><a class="button primary" href="/console/oidc/start">Sign in with your company account</a></p>`,
      );
    if (this.adminToken.enabled)
      parts.push(`<form method="post" action="/console/login/token" class="card">
        <h2>Operator sign-in</h2>
        <p>For small installs: the gateway's <code>ADMIN_TOKEN</code> signs you in as an admin.</p>
        <label for="token">Admin token</label>
        <input id="token" name="token" type="password" autocomplete="current-password" required>
        <button type="submit">Sign in with the admin token</button>
      </form>`);
    if (parts.length === (message ? 1 : 0))
      parts.push(
        errorBox(
          'No sign-in is configured: an operator sets CONSOLE_OIDC_ISSUER and its companions, or ADMIN_TOKEN (see .env.example).',
        ),
      );
    sendHtml(reply, layout('Sign in', parts.join('\n'), null), status);
  }

  /**
   * ADMIN_TOKEN sign-in: the admin API's own check. Failures count against the client IP's
   * failed-login budget (the token endpoint's), so guessing is as slow here as at docker login.
   */
  @Post('login/token')
  async tokenLogin(
    @Req() request: FastifyRequest,
    @Res() reply: FastifyReply,
    @Body() body: Record<string, unknown> | undefined,
  ): Promise<void> {
    if (isCrossSite(request))
      throw new ConsoleRefusal(403, 'sign-in forms are accepted from this site only', 'csrf');
    const limited = await this.limiter.check(request.ip, CONSOLE_ADMIN_LOGIN);
    if (limited.limited) {
      this.recorder.record('console.signin.refuse', null, 'denied', {
        reason: 'rate_limited',
        httpStatus: 429,
      });
      void reply.header('retry-after', String(limited.retryAfterSeconds));
      return this.login(
        reply,
        `Too many failed sign-ins from this address: wait ${limited.retryAfterSeconds} s.`,
        429,
      );
    }
    const token = typeof body?.token === 'string' ? body.token : '';
    const verdict = this.adminToken.validate({
      headers: { authorization: `Bearer ${token}` },
    } as FastifyRequest);
    if (Array.isArray(verdict)) {
      await this.limiter.recordFailure(request.ip, CONSOLE_ADMIN_LOGIN);
      this.recorder.record('console.signin.refuse', null, 'denied', { reason: verdict[1], httpStatus: 401 });
      return this.login(reply, 'That is not the admin token.', 401);
    }
    await this.limiter.recordSuccess(request.ip, CONSOLE_ADMIN_LOGIN);
    return this.signIn(request, reply, {
      issuer: ADMIN_TOKEN_ISSUER,
      subject: 'admin-token',
      name: 'admin token',
      role: 'admin',
    });
  }

  @Get('oidc/start')
  async start(@Req() request: FastifyRequest, @Res() reply: FastifyReply): Promise<void> {
    const { url, login } = await this.oidc.start();
    const id = await this.sessions.beginLogin(login);
    // Lax, not Strict: the provider sends the browser back with a cross-site navigation.
    setCookie(request, reply, LOGIN_COOKIE, id, LOGIN_STATE_SECONDS, 'lax');
    void reply.redirect(url, 303);
  }

  @Get('oidc/callback')
  async callback(@Req() request: FastifyRequest, @Res() reply: FastifyReply): Promise<void> {
    const login = await this.sessions.takeLogin(readCookie(request, LOGIN_COOKIE));
    clearCookie(request, reply, LOGIN_COOKIE);
    if (!login)
      return this.login(reply, 'That sign-in took too long or was already used: please sign in again.', 400);
    const query = request.url.includes('?') ? request.url.slice(request.url.indexOf('?')) : '';
    try {
      const who = await this.oidc.finish(query, login);
      await this.signIn(request, reply, who);
    } catch (e) {
      if (!(e instanceof StaffSignInError)) throw e;
      this.recorder.record('console.signin.refuse', null, 'denied', { reason: e.reason, httpStatus: 403 });
      this.login(reply, e.message, 403);
    }
  }

  @Post('logout')
  @UseGuards(ConsoleGuard)
  async logout(@Req() request: FastifyRequest, @Res() reply: FastifyReply, @Staff() staff: StaffSession) {
    await this.sessions.destroy(readCookie(request, SESSION_COOKIE));
    clearCookie(request, reply, SESSION_COOKIE);
    this.recorder.record('console.signout', staff, 'allowed');
    void reply.redirect('/console/login', 303);
  }

  private async signIn(
    request: FastifyRequest,
    reply: FastifyReply,
    who: Omit<StaffSession, 'csrfToken'>,
  ): Promise<void> {
    const id = await this.sessions.create(who);
    setCookie(request, reply, SESSION_COOKIE, id, this.config.console.sessionMaxSeconds);
    this.recorder.record('console.signin', who, 'allowed');
    sendHtml(reply, continueTo('/console/explain'));
  }
}
