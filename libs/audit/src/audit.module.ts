import { DynamicModule, Global, Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import * as path from 'node:path';
import { GatewayConfig } from '@gatehouse/config';
import { AuditEvent } from './audit-event.entity';
import { AuditQueryService } from './audit-query.service';
import { AuditRetentionService } from './audit-retention.service';
import { AUDIT_WRITER_OPTIONS, AuditService, AuditWriterOptions } from './audit.service';

/** The spool lives in the data directory, next to the embedded PostgreSQL and the cache. */
export function auditSpoolDir(config: GatewayConfig): string {
  return path.join(config.server.dataDir, 'audit-spool');
}

function writerOptionsProvider(overrides: Partial<AuditWriterOptions> = {}) {
  return {
    provide: AUDIT_WRITER_OPTIONS,
    inject: [GatewayConfig],
    useFactory: (config: GatewayConfig): Partial<AuditWriterOptions> => ({
      spoolDir: auditSpoolDir(config),
      ...overrides,
    }),
  };
}

/**
 * AuditService (record), AuditQueryService (find) and AuditRetentionService (prune), available
 * everywhere. Needs DatabaseModule and ConfigModule.
 */
@Global()
@Module({
  imports: [TypeOrmModule.forFeature([AuditEvent])],
  providers: [AuditService, AuditQueryService, AuditRetentionService, writerOptionsProvider()],
  exports: [AuditService, AuditQueryService, AuditRetentionService],
})
export class AuditModule {
  /** Same module with writer settings changed (tests use short intervals). */
  static withOptions(options: Partial<AuditWriterOptions>): DynamicModule {
    return {
      module: AuditModule,
      providers: [writerOptionsProvider(options)],
    };
  }
}
