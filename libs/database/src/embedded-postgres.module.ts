import { Module } from '@nestjs/common';
import { EmbeddedPostgresService } from './embedded-postgres.service';

/** Holds the one EmbeddedPostgresService so the TypeORM factory and the app share the instance. */
@Module({ providers: [EmbeddedPostgresService], exports: [EmbeddedPostgresService] })
export class EmbeddedPostgresModule {}
