import { DataSource, EntityManager, QueryFailedError } from 'typeorm';
import { QueryDeepPartialEntity } from 'typeorm/query-builder/QueryPartialEntity';
import { AppLogger } from '@gatehouse/observability';
import { AuditEvent } from './audit-event.entity';
import { AuditRowSink } from './audit-row.sink';
import { AuditMetrics } from './audit.metrics';

/** The database did not finish an audit write in time (hung, not refused). */
export class AuditWriteTimeout extends Error {
  constructor(ms: number) {
    super(`the database did not finish an audit write within ${ms} ms`);
    this.name = 'AuditWriteTimeout';
  }
}

/** Stores batches of audit events in PostgreSQL, idempotently, within a write timeout. */
export class AuditBatchWriter {
  constructor(
    private readonly dataSource: DataSource,
    private readonly metrics: AuditMetrics,
    private readonly logger: AppLogger,
    private readonly writeTimeoutMs: number,
    private readonly sink: AuditRowSink | null = null,
  ) {}

  /**
   * One multi-row INSERT, ignoring ids already stored (a replay after a crash, or a write that
   * committed although the client saw an error). Rows the database refuses as data (SQLSTATE
   * classes 22 and 23) are written one by one and the refused ones logged and dropped, so one
   * bad event cannot block the trail; every other error means "unreachable" and is thrown.
   */
  async insert(batch: AuditEvent[]): Promise<void> {
    if (batch.length === 0) return;
    try {
      this.metrics.written.inc(await this.insertRows(batch));
    } catch (e) {
      if (!isDataError(e)) throw e;
      for (const event of batch) {
        try {
          this.metrics.written.inc(await this.insertRows([event]));
        } catch (one) {
          if (!isDataError(one)) throw one;
          this.metrics.dropped.inc();
          this.logger.error({ err: one, event }, 'the database refused an audit event; it is dropped');
        }
      }
    }
  }

  private async insertRows(rows: AuditEvent[]): Promise<number> {
    const insert = (manager: EntityManager) =>
      manager
        .createQueryBuilder()
        .insert()
        .into(AuditEvent)
        .values(rows as QueryDeepPartialEntity<AuditEvent>[])
        .orIgnore()
        .returning('id')
        .execute();
    const sink = this.sink;
    // With a sink, its rows commit with the audit rows or not at all.
    const write = sink
      ? this.dataSource.transaction(async (manager) => {
          const result = await insert(manager);
          const ids = new Set((result.raw as Array<{ id: string }>).map((r) => r.id));
          await sink.write(
            manager,
            rows.filter((r) => ids.has(r.id)),
          );
          return result;
        })
      : insert(this.dataSource.manager);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new AuditWriteTimeout(this.writeTimeoutMs)), this.writeTimeoutMs);
    });
    // The abandoned write may still finish; its rejection must not surface as unhandled.
    write.catch(() => undefined);
    try {
      const result = await Promise.race([write, timeout]);
      return Array.isArray(result.raw) ? result.raw.length : rows.length;
    } finally {
      clearTimeout(timer);
    }
  }
}

/** SQLSTATE class 22 (data exception) or 23 (integrity constraint): the row, not the connection. */
function isDataError(e: unknown): boolean {
  if (!(e instanceof QueryFailedError)) return false;
  const code = (e.driverError as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && (code.startsWith('22') || code.startsWith('23'));
}
