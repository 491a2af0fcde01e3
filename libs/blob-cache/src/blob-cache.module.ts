import { DynamicModule, Module, ModuleMetadata } from '@nestjs/common';
import { BlobCacheLogger } from './blob-cache-logger.interface';
import { BlobCacheMetrics } from './blob-cache-metrics.interface';
import {
  BLOB_CACHE_LOGGER,
  BLOB_CACHE_METRICS,
  BLOB_CACHE_OPTIONS,
  BLOB_INDEX_STORE,
  BlobCacheOptions,
  resolveBlobCacheOptions,
} from './blob-cache.options';
import { BlobCacheService } from './blob-cache.service';
import { BlobFileSystem } from './blob-file-system.service';
import { BlobFillCoordinator } from './blob-fill.coordinator';
import { BlobHasher, createBlobHasher } from './blob-hasher';
import { BlobIndexStore } from './blob-index-store.interface';
import { NoopBlobCacheMetrics } from './noop-blob-cache.metrics';

/** Everything the cache needs from the application, built by one factory. */
export interface BlobCacheSetup {
  options: BlobCacheOptions;
  indexStore: BlobIndexStore;
  logger: BlobCacheLogger;
  metrics?: BlobCacheMetrics;
  fileSystem?: BlobFileSystem;
  /** Default: `options.hashThreads` worker threads (createBlobHasher). */
  hasher?: BlobHasher;
}

export interface BlobCacheModuleAsyncOptions {
  imports?: ModuleMetadata['imports'];
  // Nest factories are called with whatever `inject` resolves to.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  useFactory: (...args: any[]) => BlobCacheSetup | Promise<BlobCacheSetup>;
  inject?: Array<string | symbol | (abstract new (...args: never[]) => unknown)>;
}

const BLOB_CACHE_SETUP = Symbol('BLOB_CACHE_SETUP');

/**
 * Provides BlobCacheService (initialised on module init, flushed on shutdown) and
 * BlobFillCoordinator.
 */
@Module({})
export class BlobCacheModule {
  static forRootAsync(options: BlobCacheModuleAsyncOptions): DynamicModule {
    const fromSetup = <T>(
      provide: symbol | typeof BlobFileSystem | typeof BlobHasher,
      pick: (setup: BlobCacheSetup) => T,
    ) => ({
      provide,
      useFactory: pick,
      inject: [BLOB_CACHE_SETUP],
    });
    return {
      module: BlobCacheModule,
      imports: options.imports ?? [],
      providers: [
        { provide: BLOB_CACHE_SETUP, useFactory: options.useFactory, inject: options.inject ?? [] },
        fromSetup(BLOB_CACHE_OPTIONS, (s) => s.options),
        fromSetup(BLOB_INDEX_STORE, (s) => s.indexStore),
        fromSetup(BLOB_CACHE_LOGGER, (s) => s.logger),
        fromSetup(BLOB_CACHE_METRICS, (s) => s.metrics ?? new NoopBlobCacheMetrics()),
        fromSetup(BlobFileSystem, (s) => s.fileSystem ?? new BlobFileSystem()),
        fromSetup(
          BlobHasher,
          (s) => s.hasher ?? createBlobHasher(resolveBlobCacheOptions(s.options).hashThreads),
        ),
        BlobCacheService,
        BlobFillCoordinator,
      ],
      exports: [BlobCacheService, BlobFillCoordinator],
    };
  }
}
