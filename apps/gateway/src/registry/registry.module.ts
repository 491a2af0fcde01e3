import { Module } from '@nestjs/common';
import { AuditModule } from '@gatehouse/audit';
import { AuthModule } from '@gatehouse/auth';
import { PullThroughModule } from '@gatehouse/pull-through';
import { RegistryController } from './registry.controller';
import { ReferrersHandler } from './referrers.handler';
import { RegistryService } from './registry.service';

/** The `/v2/` surface: authorisation and HTTP mapping here, serving in libs/pull-through. */
@Module({
  imports: [AuditModule, AuthModule, PullThroughModule],
  controllers: [RegistryController],
  providers: [RegistryService, ReferrersHandler],
})
export class RegistryModule {}
