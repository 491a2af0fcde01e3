export * from './rate-limit.constants';
export * from './rate-limit.guard';
export * from './rate-limit.module';
export * from './rate-limit-failures.service';
export * from './rate-limited.decorator';
export * from './rate-limited-request.util';
export * from './sliding-window-counter.storage';
