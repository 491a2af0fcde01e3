import { parseCookie, stringifySetCookie } from 'cookie';
import type { FastifyReply, FastifyRequest } from 'fastify';

export const SESSION_COOKIE = 'gatehouse_console';
export const LOGIN_COOKIE = 'gatehouse_console_login';

/**
 * Every console page: scripts, styles and images from this origin only, no inline script or
 * style, no framing, forms posting only here.
 */
export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "font-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

export function readCookie(request: FastifyRequest, name: string): string | undefined {
  const header = request.headers.cookie;
  if (!header) return undefined;
  return parseCookie(header)[name];
}

/** HttpOnly, SameSite=Strict, scoped to /console/ (or `path`), Secure when the client came over TLS. */
export function setCookie(
  request: FastifyRequest,
  reply: FastifyReply,
  name: string,
  value: string,
  maxAgeSeconds: number,
  sameSite: 'strict' | 'lax' = 'strict',
  path = '/console/',
): void {
  const cookie = stringifySetCookie(name, value, {
    httpOnly: true,
    sameSite,
    secure: request.protocol === 'https',
    path,
    maxAge: maxAgeSeconds,
  });
  const previous = reply.getHeader('set-cookie');
  const list = previous === undefined ? [] : Array.isArray(previous) ? previous : [String(previous)];
  reply.header('set-cookie', [...list, cookie]);
}

export function clearCookie(
  request: FastifyRequest,
  reply: FastifyReply,
  name: string,
  path = '/console/',
): void {
  setCookie(request, reply, name, '', 0, 'strict', path);
}

export function securityHeaders(reply: FastifyReply): FastifyReply {
  return reply
    .header('content-security-policy', CONSOLE_CSP)
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'same-origin')
    .header('x-frame-options', 'DENY')
    .header('cache-control', 'no-store');
}

export function sendHtml(reply: FastifyReply, html: string, status = 200): void {
  void securityHeaders(reply).status(status).type('text/html; charset=utf-8').send(html);
}

/**
 * True when a browser says the request came from another site: `Sec-Fetch-Site` (every current
 * browser sends it) or, failing that, an `Origin` whose host is not the request's.
 */
export function isCrossSite(request: FastifyRequest): boolean {
  const site = request.headers['sec-fetch-site'];
  if (typeof site === 'string' && site !== 'same-origin' && site !== 'none') return true;
  const origin = request.headers.origin;
  if (typeof origin === 'string' && origin !== 'null') {
    try {
      return new URL(origin).host !== request.headers.host;
    } catch {
      return true;
    }
  }
  return origin === 'null';
}
