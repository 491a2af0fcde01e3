import { DynamicModule, Global, Module } from '@nestjs/common';
import { GatewayConfig } from '@gatehouse/config';
import { AppLogger, createPinoLogger } from './app-logger.service';
import { Clock } from './clock';
import { MetricsService } from './metrics.service';

@Global()
@Module({})
export class ObservabilityModule {
  /**
   * Pass a logger to share the one the app bootstrapped with; otherwise one is built from config.
   * Pass a clock to control time (tests); otherwise the system clock.
   */
  static forRoot(logger?: AppLogger, clock?: Clock): DynamicModule {
    return {
      module: ObservabilityModule,
      providers: [
        MetricsService,
        clock ? { provide: Clock, useValue: clock } : Clock,
        logger
          ? { provide: AppLogger, useValue: logger }
          : {
              provide: AppLogger,
              inject: [GatewayConfig],
              useFactory: (config: GatewayConfig) => new AppLogger(createPinoLogger(config.server.logLevel)),
            },
      ],
      exports: [MetricsService, AppLogger, Clock],
    };
  }
}
