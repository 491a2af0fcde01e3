import * as path from 'node:path';
import { Module } from '@nestjs/common';
import { AuditModule } from '@gatehouse/audit';
import { AuthModule } from '@gatehouse/auth';
import { BlobCacheModule, TypeormBlobIndexStore } from '@gatehouse/blob-cache';
import { GatewayConfig } from '@gatehouse/config';
import { AppLogger, Clock, MetricsService } from '@gatehouse/observability';
import { ManifestStore, PullThroughService } from '@gatehouse/pull-through';
import { DataSource } from 'typeorm';
import { PromBlobCacheMetrics } from './prom-blob-cache.metrics';
import { RegistryController } from './registry.controller';
import { RegistryService } from './registry.service';
import { UpstreamRegistrySource } from './upstream-registry.source';

@Module({
  imports: [
    AuditModule,
    AuthModule,
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
        },
        indexStore: new TypeormBlobIndexStore(dataSource),
        logger: logger.child({ component: 'blob-cache' }),
        metrics: new PromBlobCacheMetrics(metrics),
      }),
    }),
  ],
  controllers: [RegistryController],
  providers: [
    UpstreamRegistrySource,
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
      inject: [UpstreamRegistrySource, ManifestStore, Clock, GatewayConfig],
      useFactory: (
        source: UpstreamRegistrySource,
        store: ManifestStore,
        clock: Clock,
        config: GatewayConfig,
      ) =>
        new PullThroughService(source, store, clock, {
          tagTtlMs: config.cache.tagTtlSeconds * 1000,
          tagStaleMaxMs: config.cache.tagStaleMaxSeconds * 1000,
          maxTagEntries: 100_000,
        }),
    },
    RegistryService,
  ],
})
export class RegistryModule {}
