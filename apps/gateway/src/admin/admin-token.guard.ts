import { createHash, timingSafeEqual } from 'node:crypto';
import {
  CanActivate,
  ExecutionContext,
  Injectable,
  NotFoundException,
  UnauthorizedException,
} from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { AuditService } from '@gatehouse/audit';
import { GatewayConfig } from '@gatehouse/config';

const sha256 = (s: string) => createHash('sha256').update(s, 'utf8').digest();

/**
 * The admin API's only credential is ADMIN_TOKEN, presented as `Authorization: Bearer <token>`.
 * Member tokens and access keys are never accepted, whatever they grant on /v2/. Both sides are
 * hashed before `timingSafeEqual`, so the comparison takes the same time whatever the length or
 * the matching prefix of a guess. Without ADMIN_TOKEN the API does not exist (404).
 */
@Injectable()
export class AdminTokenGuard implements CanActivate {
  private readonly expected: Buffer | null;

  constructor(
    config: GatewayConfig,
    private readonly audit: AuditService,
  ) {
    this.expected = config.admin.token ? sha256(config.admin.token) : null;
  }

  canActivate(context: ExecutionContext): boolean {
    if (!this.expected) {
      throw new NotFoundException({
        statusCode: 404,
        error: 'Not Found',
        message: ['the admin API is disabled: the operator must set ADMIN_TOKEN to enable it'],
      });
    }
    const http = context.switchToHttp();
    const request = http.getRequest<FastifyRequest>();
    const match = /^Bearer\s+(\S+)\s*$/i.exec(request.headers.authorization ?? '');
    if (match && timingSafeEqual(sha256(match[1]), this.expected)) return true;

    const reason = match ? 'admin_token_invalid' : 'admin_token_missing';
    this.audit.record({
      action: 'admin.auth.refuse',
      outcome: 'denied',
      reason,
      httpStatus: 401,
      details: { method: request.method, route: request.routeOptions?.url ?? null },
    });
    http.getResponse<FastifyReply>().header('WWW-Authenticate', 'Bearer realm="gatehouse-admin"');
    throw new UnauthorizedException({
      statusCode: 401,
      error: 'Unauthorized',
      message: ['the admin API needs `Authorization: Bearer <ADMIN_TOKEN>`'],
    });
  }
}
