import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { MembersModule } from '@gatehouse/members';
import { AccessExplainService } from './access-explain.service';
import { Entitlement } from './entitlement.entity';
import { EntitlementService } from './entitlement.service';

@Module({
  imports: [TypeOrmModule.forFeature([Entitlement]), MembersModule],
  providers: [EntitlementService, AccessExplainService],
  exports: [EntitlementService, AccessExplainService, MembersModule],
})
export class EntitlementsModule {}
