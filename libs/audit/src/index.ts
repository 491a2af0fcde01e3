export * from './audit-event.entity';
export * from './audit-event.input';
export * from './audit.service';
export * from './audit-query.service';
export * from './audit.module';
export { AuditQueue } from './audit-queue';
