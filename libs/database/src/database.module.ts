import { DynamicModule, Global, Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { GatewayConfig } from '@gatehouse/config';
import { AppLogger } from '@gatehouse/observability';
import { createDataSourceOptions } from './data-source-options';
import { EmbeddedPostgresModule } from './embedded-postgres.module';
import { EmbeddedPostgresService } from './embedded-postgres.service';
import { runMigrations } from './migration-runner';

export interface DatabaseModuleOptions {
  /** Overrides `config.database.migrateOnStart` (the CLI's `migrate` command applies them itself). */
  migrateOnStart?: boolean;
  /** Connection attempts before start fails; the gateway retries, the CLI fails fast. Default 5. */
  retryAttempts?: number;
  retryDelayMs?: number;
}

/**
 * The one PostgreSQL connection pool (TypeORM DataSource). Entities register themselves with
 * `TypeOrmModule.forFeature`; the schema comes only from the migrations. With DATABASE_URL unset
 * the embedded PostgreSQL is started (or joined) first.
 */
@Global()
@Module({})
export class DatabaseModule {
  static forRoot(options: DatabaseModuleOptions = {}): DynamicModule {
    return {
      module: DatabaseModule,
      imports: [
        EmbeddedPostgresModule,
        TypeOrmModule.forRootAsync({
          imports: [EmbeddedPostgresModule],
          inject: [GatewayConfig, EmbeddedPostgresService],
          useFactory: async (config: GatewayConfig, embedded: EmbeddedPostgresService) => {
            const url = config.database.url ?? (await embedded.start());
            return {
              ...createDataSourceOptions(url, config.database.poolSize),
              autoLoadEntities: true,
              synchronize: false,
              retryAttempts: options.retryAttempts ?? 5,
              retryDelay: options.retryDelayMs ?? 2_000,
              verboseRetryLog: false,
            };
          },
        }),
      ],
      providers: [
        {
          provide: DATABASE_READY,
          inject: [GatewayConfig, DataSource, EmbeddedPostgresService, AppLogger],
          useFactory: async (
            config: GatewayConfig,
            dataSource: DataSource,
            embedded: EmbeddedPostgresService,
            logger: AppLogger,
          ) => {
            // The pool must close before the embedded server stops, whichever shutdown hook runs first.
            embedded.registerBeforeStop(async () => {
              if (dataSource.isInitialized) await dataSource.destroy();
            });
            if (options.migrateOnStart ?? config.database.migrateOnStart) {
              const applied = await runMigrations(dataSource);
              if (applied.length > 0)
                logger.info({ migrations: applied }, `applied ${applied.length} database migration(s)`);
              else logger.info('database schema is up to date');
            }
            return true;
          },
        },
      ],
      exports: [EmbeddedPostgresModule, DATABASE_READY],
    };
  }
}

/** Resolves once the DataSource is connected and, when configured, migrated. */
export const DATABASE_READY = Symbol('DATABASE_READY');
