import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { MembersModule } from '@gatehouse/members';
import { Entitlement } from './entitlement.entity';
import { EntitlementService } from './entitlement.service';

@Module({
  imports: [TypeOrmModule.forFeature([Entitlement]), MembersModule],
  providers: [EntitlementService],
  exports: [EntitlementService, MembersModule],
})
export class EntitlementsModule {}
