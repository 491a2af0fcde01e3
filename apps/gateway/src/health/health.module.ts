import { Module } from '@nestjs/common';
import { DownloadsModule } from '@gatehouse/downloads';
import { TerminusModule } from '@nestjs/terminus';
import { HealthController } from './health.controller';
import { ReadinessService } from './readiness.service';

@Module({
  imports: [TerminusModule.forRoot({ logger: false }), DownloadsModule],
  controllers: [HealthController],
  providers: [ReadinessService],
  // The console's health page shows the same rows as /readyz.
  exports: [ReadinessService],
})
export class HealthModule {}
