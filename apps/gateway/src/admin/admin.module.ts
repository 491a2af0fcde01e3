import { Module } from '@nestjs/common';
import { PullThroughModule } from '@gatehouse/pull-through';
import { AdminAuditController } from './admin-audit.controller';
import { AdminAuditRecorder } from './admin-audit.recorder';
import { AdminEntitlementsController } from './admin-entitlements.controller';
import { AdminErrorsInterceptor } from './admin-errors.interceptor';
import { AdminExplainController } from './admin-explain.controller';
import { AdminKeysController } from './admin-keys.controller';
import { AdminMembersController } from './admin-members.controller';
import { AdminOpenApiController, AdminOpenApiDocument } from './admin-openapi';
import { AdminTokenGuard } from './admin-token.guard';
import { AdminTokenStrategy } from './admin-token.strategy';
import { AdminWebhooksController } from './admin-webhooks.controller';

/**
 * The admin REST API under /admin/: the CLI's member, key, entitlement, audit and explain
 * operations over HTTP, behind ADMIN_TOKEN. Domain services come from the global AuthModule
 * (members, entitlements) and AuditModule.
 */
@Module({
  // The pull path's reachability, so explain judges artifact tags as the registry does.
  imports: [PullThroughModule],
  controllers: [
    AdminMembersController,
    AdminKeysController,
    AdminEntitlementsController,
    AdminAuditController,
    AdminExplainController,
    AdminOpenApiController,
    AdminWebhooksController,
  ],
  providers: [
    AdminTokenStrategy,
    AdminTokenGuard,
    AdminErrorsInterceptor,
    AdminAuditRecorder,
    AdminOpenApiDocument,
  ],
})
export class AdminModule {}
