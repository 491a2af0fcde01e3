import { Module } from '@nestjs/common';
import { AuditModule, AuditService } from '@gatehouse/audit';
import { BlobFillCoordinator, BlobStore } from '@gatehouse/blob-cache';
import { GatewayConfig } from '@gatehouse/config';
import { EntitlementsModule, EntitlementService } from '@gatehouse/entitlements';
import { Clock, MetricsService } from '@gatehouse/observability';
import { PullThroughModule } from '@gatehouse/pull-through';
import { UpstreamRegistryClient } from '@gatehouse/upstream';
import { DownloadAudit } from './download-audit';
import { DownloadCatalog, DownloadUpstream } from './download-catalog.service';
import { DownloadStore } from './download-store';
import { DownloadsReadiness } from './downloads.readiness';
import { DownloadsService } from './downloads.service';

export const DOWNLOAD_UPSTREAM = Symbol('DOWNLOAD_UPSTREAM');

/** The upstream client's release and package calls as the catalog's port. */
export function downloadUpstreamOf(client: UpstreamRegistryClient): DownloadUpstream {
  return {
    listReleases: async (owner, repo) => {
      const r = await client.downloads.listReleases(owner, repo);
      return r.found ? r.releases : null;
    },
    listPackageVersions: async (owner, name) => {
      const r = await client.downloads.listPackageVersions(owner, name);
      return r.found ? r.versions : null;
    },
    listPackageFiles: async (owner, name, version) => {
      const r = await client.downloads.listPackageFiles(owner, name, version);
      return r.found ? r.files : null;
    },
  };
}

/**
 * Entitled downloads (release assets, generic package files), wired once over the pull path's
 * blob cache (PullThroughModule exports it: one store, one LRU cap, one fill coordinator).
 * Needs the global ConfigModule, ObservabilityModule, DatabaseModule and UpstreamModule.
 */
@Module({
  imports: [AuditModule, EntitlementsModule, PullThroughModule],
  providers: [
    {
      provide: DOWNLOAD_UPSTREAM,
      inject: [UpstreamRegistryClient],
      useFactory: downloadUpstreamOf,
    },
    {
      provide: DownloadCatalog,
      inject: [DOWNLOAD_UPSTREAM, Clock, GatewayConfig],
      useFactory: (upstream: DownloadUpstream, clock: Clock, config: GatewayConfig) =>
        new DownloadCatalog(upstream, clock, {
          ttlMs: config.cache.tagTtlSeconds * 1000,
          staleMaxMs: config.cache.tagStaleMaxSeconds * 1000,
          maxEntries: 10_000,
        }),
    },
    {
      provide: DownloadStore,
      inject: [BlobFillCoordinator],
      useFactory: (store: BlobStore) => new DownloadStore(store),
    },
    {
      provide: DownloadAudit,
      inject: [AuditService, MetricsService],
      useFactory: (audit: AuditService, metrics: MetricsService) => new DownloadAudit(audit, metrics),
    },
    {
      provide: DownloadsReadiness,
      inject: [GatewayConfig, EntitlementService, UpstreamRegistryClient, Clock],
      useFactory: (config: GatewayConfig, e: EntitlementService, u: UpstreamRegistryClient, clock: Clock) =>
        new DownloadsReadiness(config, e, u, clock),
    },
    {
      provide: DownloadsService,
      inject: [EntitlementService, DownloadCatalog, DownloadStore, DownloadAudit, UpstreamRegistryClient],
      useFactory: (
        entitlements: EntitlementService,
        catalog: DownloadCatalog,
        store: DownloadStore,
        audit: DownloadAudit,
        upstream: UpstreamRegistryClient,
      ) => new DownloadsService(entitlements, catalog, store, audit, upstream),
    },
  ],
  exports: [DownloadsService, DownloadCatalog, DownloadsReadiness],
})
export class DownloadsModule {}
