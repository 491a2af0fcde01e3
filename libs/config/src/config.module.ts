import { DynamicModule, Global, Module } from '@nestjs/common';
import { GatewayConfig, loadGatewayConfig } from './gateway-config';

/**
 * Provides the one validated GatewayConfig. Apps load it once (so a bad environment stops the
 * process before Nest starts) and pass it in; tests pass a config built from their own env.
 */
@Global()
@Module({})
export class ConfigModule {
  static forRoot(config: GatewayConfig = loadGatewayConfig()): DynamicModule {
    return {
      module: ConfigModule,
      providers: [{ provide: GatewayConfig, useValue: config }],
      exports: [GatewayConfig],
    };
  }
}
