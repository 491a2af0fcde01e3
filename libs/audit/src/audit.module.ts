import { DynamicModule, Global, Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import * as path from 'node:path';
import { GatewayConfig } from '@gatehouse/config';
import { Clock } from '@gatehouse/observability';
import { AuditSpool } from './audit-spool';
import { AuditEvent } from './audit-event.entity';
import { AuditQueryService } from './audit-query.service';
import { AuditRetentionService } from './audit-retention.service';
import {
  AUDIT_SPOOL,
  AUDIT_WRITER_OPTIONS,
  AuditService,
  AuditWriterOptions,
  DEFAULT_AUDIT_WRITER_OPTIONS,
} from './audit.service';

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

/** The spool the writer uses: one per process, in the options' directory (none without one). */
export function createAuditSpool(
  options: Partial<AuditWriterOptions>,
  clock: Clock = new Clock(),
): AuditSpool | null {
  const o = { ...DEFAULT_AUDIT_WRITER_OPTIONS, ...options };
  if (!o.spoolDir) return null;
  return new AuditSpool(
    {
      dir: o.spoolDir,
      maxBytes: o.spoolMaxBytes,
      segmentMaxBytes: o.spoolSegmentMaxBytes,
      lockStaleMs: 60_000,
    },
    clock,
  );
}

const auditSpoolProvider = {
  provide: AUDIT_SPOOL,
  inject: [AUDIT_WRITER_OPTIONS, { token: Clock, optional: true }],
  useFactory: (options: Partial<AuditWriterOptions>, clock?: Clock) => createAuditSpool(options, clock),
};

/**
 * AuditService (record), AuditQueryService (find) and AuditRetentionService (prune), available
 * everywhere. Needs DatabaseModule and ConfigModule.
 */
@Global()
@Module({
  imports: [TypeOrmModule.forFeature([AuditEvent])],
  providers: [
    AuditService,
    AuditQueryService,
    AuditRetentionService,
    writerOptionsProvider(),
    auditSpoolProvider,
  ],
  exports: [AuditService, AuditQueryService, AuditRetentionService],
})
export class AuditModule {
  /** Same module with writer settings changed (tests use short intervals). */
  static withOptions(options: Partial<AuditWriterOptions>): DynamicModule {
    return {
      module: AuditModule,
      providers: [writerOptionsProvider(options), auditSpoolProvider],
    };
  }
}
