export * from './pagination';
export * from './referrers.service';
export * from './registry-audit';
export * from './registry.module';
export * from './registry.service';
export * from './registry.types';
export * from './upstream-catalog';
