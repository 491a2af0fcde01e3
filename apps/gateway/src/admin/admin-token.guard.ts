import { ExecutionContext, HttpStatus, Injectable, NotFoundException } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { AppPassportGuard } from '@gatehouse/auth';
import { AuditService } from '@gatehouse/audit';
import { adminHttpError } from './admin-errors.interceptor';
import { AdminPrincipal, AdminTokenRefusal, AdminTokenStrategy } from './admin-token.strategy';

/**
 * The admin API's guard: this application's AdminTokenStrategy through passport. Without
 * ADMIN_TOKEN the API does not exist (404). A refusal is audited and answered in the admin
 * API's own JSON shape with `WWW-Authenticate: Bearer realm="gatehouse-admin"`, never with
 * passport's default answer.
 */
@Injectable()
export class AdminTokenGuard extends AppPassportGuard<AdminPrincipal> {
  constructor(
    private readonly strategy: AdminTokenStrategy,
    private readonly audit: AuditService,
  ) {
    super(strategy, 'gatehouseAdmin');
  }

  override canActivate(context: ExecutionContext): Promise<boolean> {
    if (!this.strategy.enabled) {
      throw new NotFoundException({
        statusCode: 404,
        error: 'Not Found',
        message: ['the admin API is disabled: the operator must set ADMIN_TOKEN to enable it'],
      });
    }
    return super.canActivate(context) as Promise<boolean>;
  }

  protected accept(user: unknown): AdminPrincipal {
    return user as AdminPrincipal;
  }

  protected refuse(info: unknown, context: ExecutionContext): never {
    const http = context.switchToHttp();
    const request = http.getRequest<FastifyRequest>();
    const reason: AdminTokenRefusal = info === 'admin_token_invalid' ? info : 'admin_token_missing';
    const refusal = adminHttpError(
      HttpStatus.UNAUTHORIZED,
      'the admin API needs `Authorization: Bearer <ADMIN_TOKEN>`',
    );
    this.audit.record({
      action: 'admin.auth.refuse',
      outcome: 'denied',
      reason,
      // The audited status is the answered one's, not a second copy of it.
      httpStatus: refusal.getStatus(),
      details: { method: request.method, route: request.routeOptions?.url ?? null },
    });
    http.getResponse<FastifyReply>().header('WWW-Authenticate', 'Bearer realm="gatehouse-admin"');
    throw refusal;
  }
}
