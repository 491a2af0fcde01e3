import { Module, OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { FastifyInstance } from 'fastify';
import { AuthModule } from '@gatehouse/auth';
import { DownloadsModule } from '@gatehouse/downloads';
import { PullThroughModule } from '@gatehouse/pull-through';
import { RegistryModule } from '@gatehouse/registry';
import { PortalActivityController } from './portal-activity.controller';
import { PortalAuthController } from './portal-auth.controller';
import { PortalDownloadsController } from './portal-downloads.controller';
import { PortalController } from './portal.controller';
import { PortalErrorsFilter } from './portal-errors.filter';
import { PortalGuard } from './portal.guard';
import { PortalSessionStore } from './portal-session.store';

/**
 * The customer portal under /portal/: a member signs in with their access key and sees what they
 * may pull, on the console's page stack (CSP, cookies, assets) with sessions of its own.
 */
@Module({
  imports: [AuthModule, PullThroughModule, DownloadsModule, RegistryModule],
  controllers: [PortalAuthController, PortalController, PortalActivityController, PortalDownloadsController],
  providers: [PortalSessionStore, PortalGuard, PortalErrorsFilter],
})
export class PortalModule implements OnModuleInit {
  constructor(private readonly http: HttpAdapterHost) {}

  /** `/portal` and `/portal/` (what people type) lead to the overview. */
  onModuleInit(): void {
    const fastify = this.http.httpAdapter.getInstance<FastifyInstance>();
    for (const url of ['/portal', '/portal/']) {
      fastify.get(url, (_request, reply) => reply.redirect('/portal/overview', 303));
    }
  }
}
