import { Module } from '@nestjs/common';
import { AuditModule } from '@gatehouse/audit';
import { EntitlementsModule } from '@gatehouse/entitlements';
import { GatewayConfig } from '@gatehouse/config';
import { Clock } from '@gatehouse/observability';
import { PullThroughModule } from '@gatehouse/pull-through';
import { UpstreamRegistryClient } from '@gatehouse/upstream';
import { ReferrersService } from './referrers.service';
import { RegistryAudit } from './registry-audit';
import { RegistryService } from './registry.service';
import { UpstreamCatalog, upstreamCatalogOf } from './upstream-catalog';

/**
 * The registry's decisions (manifests, blobs, tag lists, catalog, referrers) over the pull path
 * (libs/pull-through), with their audit rows. Needs the global ConfigModule,
 * ObservabilityModule, DatabaseModule and UpstreamModule; the HTTP edge is apps/gateway's.
 */
@Module({
  imports: [AuditModule, EntitlementsModule, PullThroughModule],
  providers: [
    RegistryService,
    ReferrersService,
    RegistryAudit,
    {
      provide: UpstreamCatalog,
      inject: [GatewayConfig, UpstreamRegistryClient, Clock],
      useFactory: upstreamCatalogOf,
    },
  ],
  exports: [RegistryService, RegistryAudit],
})
export class RegistryModule {}
