import { DynamicModule, Module, Type } from '@nestjs/common';
import { ConfigModule, GatewayConfig } from '@gatehouse/config';
import { DatabaseModule } from '@gatehouse/database';
import { AppLogger, ObservabilityModule } from '@gatehouse/observability';
import { AuditModule } from '@gatehouse/audit';
import { EntitlementsModule } from '@gatehouse/entitlements';
import { EventsModule } from '@gatehouse/events';

/** Domain modules the CLI commands use. A new domain adds its module here. */
export const CLI_DOMAIN_MODULES: Array<Type | DynamicModule> = [
  AuditModule,
  EntitlementsModule,
  // Events without the delivery worker: the CLI's audit rows get their outbox events, and webhooks.
  EventsModule.forRoot({ worker: false }),
];

export interface CliModuleOptions {
  config: GatewayConfig;
  logger: AppLogger;
  /** Apply pending migrations while booting (the `migrate` command applies them itself). */
  migrate: boolean;
}

@Module({})
export class CliModule {
  static forRoot(options: CliModuleOptions): DynamicModule {
    return {
      module: CliModule,
      imports: [
        ConfigModule.forRoot(options.config),
        ObservabilityModule.forRoot(options.logger),
        // An operator waiting on a dead database wants the error now, not after retries.
        DatabaseModule.forRoot({ migrateOnStart: options.migrate, retryAttempts: 1 }),
        ...CLI_DOMAIN_MODULES,
      ],
    };
  }
}
