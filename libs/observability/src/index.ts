export * from './request-context';
export * from './app-logger.service';
export * from './metrics.service';
export * from './observability.module';
export * from './clock';
export * from './capturing-logger';
