import { applyDecorators, UseGuards, UseInterceptors } from '@nestjs/common';
import { SkipThrottle } from '@nestjs/throttler';
import { BlobStreamSlotInterceptor } from './blob-stream-slot.interceptor';
import { RateLimitGuard } from './rate-limit.guard';

/**
 * Puts a controller under the request limits of its surface: `registry` (/v2/: per member, or
 * per IP without a valid token, plus the cap on concurrent blob streams) or `token`
 * (/auth/token: per IP).
 */
export function RateLimited(surface: 'registry' | 'token'): ClassDecorator & MethodDecorator {
  const skip: Record<string, boolean> =
    surface === 'registry' ? { token_ip: true } : { v2_member: true, anonymous_ip: true };
  if (surface === 'token') return applyDecorators(SkipThrottle(skip), UseGuards(RateLimitGuard));
  return applyDecorators(
    SkipThrottle(skip),
    UseGuards(RateLimitGuard),
    UseInterceptors(BlobStreamSlotInterceptor),
  );
}
