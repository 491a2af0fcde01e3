import { Module } from '@nestjs/common';
import { AuthModule } from '@gatehouse/auth';
import { TokenController } from './token.controller';

@Module({ imports: [AuthModule], controllers: [TokenController] })
export class TokenModule {}
