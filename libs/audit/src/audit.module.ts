import { DynamicModule, Global, Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { AuditEvent } from './audit-event.entity';
import { AuditQueryService } from './audit-query.service';
import { AUDIT_WRITER_OPTIONS, AuditService, AuditWriterOptions } from './audit.service';

/** AuditService (record) and AuditQueryService (find), available everywhere. Needs DatabaseModule. */
@Global()
@Module({
  imports: [TypeOrmModule.forFeature([AuditEvent])],
  providers: [AuditService, AuditQueryService],
  exports: [AuditService, AuditQueryService],
})
export class AuditModule {
  /** Same module with writer settings changed (tests use short intervals). */
  static withOptions(options: Partial<AuditWriterOptions>): DynamicModule {
    return {
      module: AuditModule,
      providers: [{ provide: AUDIT_WRITER_OPTIONS, useValue: options }],
    };
  }
}
