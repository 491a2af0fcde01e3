export * from './upstream-source.interface';
export * from './manifest-store.service';
export * from './pull-through.service';
