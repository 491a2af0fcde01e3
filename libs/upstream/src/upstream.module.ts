import { DynamicModule, Inject, Module, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { GatewayConfig } from '@gatehouse/config';
import { AppLogger, Clock, MetricsService } from '@gatehouse/observability';
import { UpstreamHealth } from './upstream-health.service';
import { UpstreamRegistryClient } from './upstream-registry.client';
import { UpstreamClientOptions } from './upstream.types';

export interface UpstreamModuleOptions {
  /** Run the self-check (and log its diagnostic) when the application starts. Default true. */
  selfCheckOnStart?: boolean;
  /** A repository known to exist upstream, probed by readiness to prove `read:package`. */
  probeRepository?: string;
  healthTtlMs?: number;
  client?: UpstreamClientOptions;
}

export const UPSTREAM_MODULE_OPTIONS = Symbol('UPSTREAM_MODULE_OPTIONS');

/**
 * The upstream client and its readiness check. Needs the global ConfigModule and
 * ObservabilityModule (which provides the Clock; override it to control time in tests).
 */
@Module({})
export class UpstreamModule implements OnApplicationBootstrap, OnModuleDestroy {
  constructor(
    private readonly client: UpstreamRegistryClient,
    private readonly health: UpstreamHealth,
    @Inject(UPSTREAM_MODULE_OPTIONS) private readonly options: UpstreamModuleOptions,
  ) {}

  static forRoot(options: UpstreamModuleOptions = {}): DynamicModule {
    return {
      module: UpstreamModule,
      // One client (one connection pool, one token cache) for the whole process.
      global: true,
      providers: [
        { provide: UPSTREAM_MODULE_OPTIONS, useValue: options },
        {
          provide: UpstreamRegistryClient,
          inject: [GatewayConfig, AppLogger, MetricsService, Clock],
          useFactory: (config: GatewayConfig, logger: AppLogger, metrics: MetricsService, clock: Clock) =>
            new UpstreamRegistryClient(config.upstream, logger, metrics, clock, options.client),
        },
        {
          provide: UpstreamHealth,
          inject: [UpstreamRegistryClient, AppLogger, Clock],
          useFactory: (client: UpstreamRegistryClient, logger: AppLogger, clock: Clock) =>
            new UpstreamHealth(client, logger, clock, {
              ttlMs: options.healthTtlMs,
              probeRepository: options.probeRepository,
            }),
        },
      ],
      exports: [UpstreamRegistryClient, UpstreamHealth],
    };
  }

  onApplicationBootstrap(): void {
    // Not awaited: a slow or dead upstream must not delay the start; the result lands in the log and /readyz.
    if (this.options.selfCheckOnStart !== false) void this.health.selfCheck();
  }

  async onModuleDestroy(): Promise<void> {
    await this.client.close();
  }
}
