import { Module, OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { FastifyInstance } from 'fastify';
import { AuditAnalyticsService } from '@gatehouse/audit';
import { DownloadsModule } from '@gatehouse/downloads';
import { PullThroughModule } from '@gatehouse/pull-through';
import { AdminAuditController } from '../admin/admin-audit.controller';
import { AdminTokenStrategy } from '../admin/admin-token.strategy';
import { HealthModule } from '../health/health.module';
import { ConsoleAnalyticsController } from './console-analytics.controller';
import { ConsoleAssetsController } from './console-assets.controller';
import { ConsoleAuditController } from './console-audit.controller';
import { ConsoleAuditRecorder } from './console-audit.recorder';
import { ConsoleAuthController } from './console-auth.controller';
import { ConsoleErrorsFilter } from './console-errors.filter';
import { ConsoleExplainController } from './console-explain.controller';
import { ConsoleGrantController } from './console-grant.controller';
import { ConsoleHealthController } from './console-health.controller';
import { ConsoleGuard } from './console.guard';
import { ConsoleLiveChecks } from './console-live-checks';
import { ConsoleMembersController } from './console-members.controller';
import { ConsoleOidcService } from './console-oidc.service';
import { ConsoleSessionStore } from './console-session.store';
import { ConsoleWebhooksController } from './console-webhooks.controller';

/**
 * The support console under /console/: server-rendered pages on the same services the admin API
 * uses (members, keys, entitlements, explain, audit, webhooks), behind staff sessions.
 */
@Module({
  imports: [PullThroughModule, DownloadsModule, HealthModule],
  controllers: [
    ConsoleAuthController,
    ConsoleAssetsController,
    ConsoleExplainController,
    ConsoleMembersController,
    ConsoleGrantController,
    ConsoleAuditController,
    ConsoleAnalyticsController,
    ConsoleWebhooksController,
    ConsoleHealthController,
  ],
  providers: [
    ConsoleSessionStore,
    ConsoleOidcService,
    ConsoleGuard,
    ConsoleErrorsFilter,
    ConsoleAuditRecorder,
    ConsoleLiveChecks,
    AdminTokenStrategy,
    // The admin API's audit search, keyset paging included, as a service of the console.
    AdminAuditController,
    AuditAnalyticsService,
  ],
})
export class ConsoleModule implements OnModuleInit {
  constructor(private readonly http: HttpAdapterHost) {}

  /** `/console` and `/console/` (what people type) lead to the first page. */
  onModuleInit(): void {
    const fastify = this.http.httpAdapter.getInstance<FastifyInstance>();
    for (const url of ['/console', '/console/']) {
      fastify.get(url, (_request, reply) => reply.redirect('/console/explain', 303));
    }
  }
}
