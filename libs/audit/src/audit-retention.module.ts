import { Module } from '@nestjs/common';
import { AuditRetentionScheduler } from './audit-retention.scheduler';

/** The gateway's hourly prune of audit rows past AUDIT_RETENTION_DAYS. Needs AuditModule. */
@Module({ providers: [AuditRetentionScheduler], exports: [AuditRetentionScheduler] })
export class AuditRetentionModule {}
