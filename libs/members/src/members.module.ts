import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { GatewayConfig } from '@gatehouse/config';
import { AccessKeyHasher } from './access-key-hasher.service';
import { AccessKey } from './access-key.entity';
import { AccessKeyService } from './access-key.service';
import { Member } from './member.entity';
import { MemberService } from './member.service';

@Module({
  imports: [TypeOrmModule.forFeature([Member, AccessKey])],
  providers: [
    MemberService,
    AccessKeyService,
    {
      provide: AccessKeyHasher,
      inject: [GatewayConfig],
      useFactory: (config: GatewayConfig) => AccessKeyHasher.fromConfig(config.auth),
    },
  ],
  exports: [MemberService, AccessKeyService, AccessKeyHasher],
})
export class MembersModule {}
