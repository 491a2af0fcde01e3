import * as path from 'node:path';
import { Module } from '@nestjs/common';
import {
  BlobCacheModule,
  BlobFillCoordinator,
  BlobStore,
  TypeormBlobIndexStore,
} from '@gatehouse/blob-cache';
import { GatewayConfig } from '@gatehouse/config';
import { AppLogger, Clock, MetricsService } from '@gatehouse/observability';
import { DataSource } from 'typeorm';
import { BlobSource } from './blob.source';
import { ImageSummarySource } from './image-summary.source';
import { ManifestSource } from './manifest.source';
import { ManifestStore } from './manifest-store.service';
import { PromBlobCacheMetrics } from './prom-blob-cache.metrics';
import { PromPullThroughMetrics } from './prom-pull-through.metrics';
import { PullThroughService } from './pull-through.service';
import { ReferrersSource } from './referrers.source';
import { UpstreamRegistrySource } from './upstream-registry.source';
import { UPSTREAM_SOURCE, UpstreamSource } from './upstream-source.interface';

/**
 * The pull path, wired once: the blob cache, the manifest store, tag resolution and
 * reachability, and the upstream client behind the `UpstreamSource` port. Needs the global
 * ConfigModule, ObservabilityModule, DatabaseModule (the blob index) and UpstreamModule.
 * Exports what the registry surface uses: `PullThroughService` (tags, reachability),
 * `ManifestSource` and `BlobSource`.
 */
@Module({
  imports: [
    BlobCacheModule.forRootAsync({
      inject: [GatewayConfig, DataSource, AppLogger, MetricsService],
      useFactory: (
        config: GatewayConfig,
        dataSource: DataSource,
        logger: AppLogger,
        metrics: MetricsService,
      ) => ({
        options: {
          cacheDir: config.cache.dir,
          maxBytes: config.cache.maxBytes,
          fillTimeoutMs: config.cache.fillTimeoutMs,
          // One read per 256 KiB instead of 64: a quarter of the thread-pool round trips and
          // stream steps per byte served (dev-docs/performance.md), still a small bound per reader.
          readChunkBytes: 256 * 1024,
          hashThreads: config.cache.hashThreads,
        },
        indexStore: new TypeormBlobIndexStore(dataSource),
        logger: logger.child({ component: 'blob-cache' }),
        metrics: new PromBlobCacheMetrics(metrics),
      }),
    }),
  ],
  providers: [
    { provide: UPSTREAM_SOURCE, useClass: UpstreamRegistrySource },
    {
      provide: ManifestStore,
      inject: [GatewayConfig],
      useFactory: async (config: GatewayConfig) => {
        // Manifests live beside the blobs so one volume holds the whole cache.
        const store = new ManifestStore({
          dir: path.join(config.cache.dir, 'manifests'),
          memoryMaxBytes: config.cache.manifestMemoryMaxBytes,
        });
        await store.init();
        return store;
      },
    },
    {
      provide: PullThroughService,
      inject: [UPSTREAM_SOURCE, ManifestStore, Clock, GatewayConfig, MetricsService, AppLogger],
      useFactory: (
        source: UpstreamSource,
        store: ManifestStore,
        clock: Clock,
        config: GatewayConfig,
        metrics: MetricsService,
        logger: AppLogger,
      ) =>
        new PullThroughService(
          source,
          store,
          clock,
          {
            tagTtlMs: config.cache.tagTtlSeconds * 1000,
            tagStaleMaxMs: config.cache.tagStaleMaxSeconds * 1000,
            maxTagEntries: 100_000,
          },
          new PromPullThroughMetrics(metrics, logger.child({ component: 'pull-through' })),
        ),
    },
    {
      provide: ManifestSource,
      inject: [PullThroughService],
      useFactory: (pull: PullThroughService) => new ManifestSource(pull),
    },
    {
      provide: BlobSource,
      inject: [BlobFillCoordinator, UPSTREAM_SOURCE],
      useFactory: (store: BlobStore, source: UpstreamSource) => new BlobSource(store, source),
    },
    {
      provide: ImageSummarySource,
      inject: [PullThroughService, BlobSource, ReferrersSource],
      useFactory: (pull: PullThroughService, blobs: BlobSource, referrers: ReferrersSource) =>
        new ImageSummarySource(pull, blobs, referrers),
    },
    {
      provide: ReferrersSource,
      inject: [PullThroughService, UPSTREAM_SOURCE, Clock, GatewayConfig],
      useFactory: (pull: PullThroughService, source: UpstreamSource, clock: Clock, config: GatewayConfig) =>
        new ReferrersSource(pull, source, clock, {
          tagTtlMs: config.cache.tagTtlSeconds * 1000,
          tagStaleMaxMs: config.cache.tagStaleMaxSeconds * 1000,
          maxEntries: 100_000,
        }),
    },
  ],
  // BlobCacheModule too: downloads (libs/downloads) use the same store, cap and fill coordinator.
  exports: [
    PullThroughService,
    ManifestSource,
    BlobSource,
    ReferrersSource,
    ImageSummarySource,
    BlobCacheModule,
  ],
})
export class PullThroughModule {}
