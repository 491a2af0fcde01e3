import { Module } from '@nestjs/common';
import { AuditModule } from '@gatehouse/audit';
import { EntitlementsModule } from '@gatehouse/entitlements';
import { PullThroughModule } from '@gatehouse/pull-through';
import { ReferrersService } from './referrers.service';
import { RegistryAudit } from './registry-audit';
import { RegistryService } from './registry.service';

/**
 * The registry's decisions (manifests, blobs, tag lists, catalog, referrers) over the pull path
 * (libs/pull-through), with their audit rows. Needs the global ConfigModule,
 * ObservabilityModule, DatabaseModule and UpstreamModule; the HTTP edge is apps/gateway's.
 */
@Module({
  imports: [AuditModule, EntitlementsModule, PullThroughModule],
  providers: [RegistryService, ReferrersService, RegistryAudit],
  exports: [RegistryService, RegistryAudit],
})
export class RegistryModule {}
