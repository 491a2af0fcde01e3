import { DynamicModule, Module } from '@nestjs/common';
import { ConfigModule, GatewayConfig } from '@gatehouse/config';
import { AppLogger, Clock, ObservabilityModule } from '@gatehouse/observability';
import { AuditRetentionModule } from '@gatehouse/audit';
import { DatabaseModule } from '@gatehouse/database';
import { EventsModule } from '@gatehouse/events';
import { MembersModule } from '@gatehouse/members';
import { UpstreamModule } from '@gatehouse/upstream';
import { RateLimitModule } from '@gatehouse/rate-limit';
import { AdminModule } from './admin/admin.module';
import { ConsoleModule } from './console/console.module';
import { PortalModule } from './portal/portal.module';
import { DownloadsHttpModule } from './downloads/downloads.module';
import { HealthModule } from './health/health.module';
import { MetricsController } from './metrics/metrics.controller';
import { RegistryHttpModule } from './registry/registry.module';
import { TokenModule } from './token/token.module';
import { UpstreamMemberTagWiring } from './upstream-member-tag.wiring';

/** Composition root: the libs, wired once. */
@Module({})
export class GatewayModule {
  /** `clock` replaces the system clock everywhere (tests that move time). */
  static forRoot(config: GatewayConfig, logger: AppLogger, clock?: Clock): DynamicModule {
    return {
      module: GatewayModule,
      imports: [
        ConfigModule.forRoot(config),
        ObservabilityModule.forRoot(logger, clock),
        DatabaseModule.forRoot(),
        UpstreamModule.forRoot({ selfCheckOnStart: config.upstream.enabled }),
        RateLimitModule.forRoot(),
        MembersModule,
        HealthModule,
        RegistryHttpModule,
        DownloadsHttpModule,
        TokenModule,
        AdminModule,
        ConsoleModule,
        PortalModule,
        AuditRetentionModule,
        EventsModule.forRoot({ worker: true }),
      ],
      controllers: [MetricsController],
      providers: [UpstreamMemberTagWiring],
    };
  }
}
