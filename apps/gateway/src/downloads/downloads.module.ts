import { Module } from '@nestjs/common';
import { AuthModule } from '@gatehouse/auth';
import { DownloadsModule as DownloadsLibModule } from '@gatehouse/downloads';
import { DownloadsController } from './downloads.controller';

/** The `/downloads/` surface: authentication and HTTP mapping here, decisions in libs/downloads. */
@Module({ imports: [AuthModule, DownloadsLibModule], controllers: [DownloadsController] })
export class DownloadsHttpModule {}
