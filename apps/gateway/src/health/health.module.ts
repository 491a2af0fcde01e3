import { Module } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { DownloadsModule } from '@gatehouse/downloads';
import { GatewayConfig } from '@gatehouse/config';
import { PgReplicaStore, ReplicaHeartbeat } from '@gatehouse/database';
import { AppLogger, Clock } from '@gatehouse/observability';
import { TerminusModule } from '@nestjs/terminus';
import { HealthController } from './health.controller';
import { ReadinessService } from './readiness.service';

@Module({
  imports: [TerminusModule.forRoot({ logger: false }), DownloadsModule],
  controllers: [HealthController],
  providers: [
    ReadinessService,
    {
      // This replica's row in gateway_replicas, every 15 s while the gateway runs (not in the CLI).
      provide: ReplicaHeartbeat,
      inject: [DataSource, Clock, AppLogger, GatewayConfig],
      useFactory: (db: DataSource, clock: Clock, logger: AppLogger, config: GatewayConfig) =>
        new ReplicaHeartbeat(new PgReplicaStore(db), clock, logger, {
          listenAddress: `${config.server.host}:${config.server.port}`,
        }),
    },
  ],
  // The console's health page shows the same rows as /readyz, and the replicas seen recently.
  exports: [ReadinessService, ReplicaHeartbeat],
})
export class HealthModule {}
