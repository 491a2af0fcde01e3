import { EntityManager } from 'typeorm';
import { AuditEvent } from './audit-event.entity';

/**
 * Something written with the audit rows, in their transaction: the rows a batch actually
 * inserted (ids already stored are left out, so a replay writes nothing twice). A sink that
 * throws rolls the batch back, and the writer treats it like any failed write (retry, spool).
 * libs/events provides one (its outbox); without one the writer inserts the rows alone.
 */
export interface AuditRowSink {
  write(manager: EntityManager, rows: AuditEvent[]): Promise<void>;
}

export const AUDIT_ROW_SINK = Symbol('AUDIT_ROW_SINK');
