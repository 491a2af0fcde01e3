export * from './upstream-source.interface';
export * from './upstream-registry.source';
export * from './manifest-store.service';
export * from './manifest-fetch.trace';
export * from './pull-through.service';
export * from './manifest.source';
export * from './blob.source';
export * from './pull-through.module';
