import { Module } from '@nestjs/common';
import { AuthModule } from '@gatehouse/auth';
import { RegistryModule } from '@gatehouse/registry';
import { RegistryController } from './registry.controller';

/** The `/v2/` surface: the request pipeline and HTTP mapping here, decisions in libs/registry. */
@Module({ imports: [AuthModule, RegistryModule], controllers: [RegistryController] })
export class RegistryHttpModule {}
