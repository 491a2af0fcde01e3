import { applyDecorators, UseGuards } from '@nestjs/common';
import { SkipThrottle } from '@nestjs/throttler';
import { RateLimitGuard } from './rate-limit.guard';

/**
 * Puts a controller under the request limits of its surface: `registry` (/v2/: per member, or
 * per IP without a valid token) or `token` (/auth/token: per IP).
 */
export function RateLimited(surface: 'registry' | 'token'): ClassDecorator & MethodDecorator {
  const skip: Record<string, boolean> =
    surface === 'registry' ? { token_ip: true } : { v2_member: true, anonymous_ip: true };
  return applyDecorators(SkipThrottle(skip), UseGuards(RateLimitGuard));
}
