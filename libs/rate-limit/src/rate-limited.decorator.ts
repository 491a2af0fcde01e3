import { applyDecorators, UseGuards } from '@nestjs/common';
import { SkipThrottle } from '@nestjs/throttler';
import { RateLimitGuard } from './rate-limit.guard';

/** The limits that do not apply to a surface (each surface counts in its own buckets). */
export function rateLimitSkips(surface: 'registry' | 'token'): ClassDecorator & MethodDecorator {
  return SkipThrottle(surface === 'registry' ? { token_ip: true } : { v2_member: true, anonymous_ip: true });
}

/**
 * Puts a controller under the request limits of its surface: `token` (/auth/token: per IP) or
 * `registry` (/v2/: per member, or per IP without a valid token). A registry controller places
 * RateLimitGuard in its own guard chain after the guard that identifies the request
 * (`rateLimitSkips('registry')` plus `UseGuards(…, RateLimitGuard, …)`), since the guard reads
 * the identity from the request's registry context.
 */
export function RateLimited(surface: 'registry' | 'token'): ClassDecorator & MethodDecorator {
  return applyDecorators(rateLimitSkips(surface), UseGuards(RateLimitGuard));
}
