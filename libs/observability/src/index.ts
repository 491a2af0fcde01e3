export * from './request-context';
export * from './app-logger.service';
export * from './metrics.service';
export * from './observability.module';
export * from './clock';
export * from './capturing-logger';
// parseDuration is imported as @gatehouse/observability/duration (lean: the audit CLI runs without Nest).
export * from './duration';
