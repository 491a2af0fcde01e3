import { DataSource, EntityManager, QueryFailedError } from 'typeorm';
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

/** The columns of audit_events as the entity maps them, and the one INSERT that writes a batch. */
interface InsertPlan {
  sql: string;
  columns: Array<{ name: string; property: string; type: string; to: ((v: unknown) => unknown) | null }>;
}

/**
 * Stores batches of audit events in PostgreSQL, idempotently, within a write timeout. A batch is
 * one parameter (the rows as a JSON array, unpacked by `jsonb_to_recordset`): TypeORM's insert
 * builder makes and escapes one parameter per cell, which cost the event loop more than the
 * requests being audited (figure 11's profile in dev-docs/performance.md).
 */
export class AuditBatchWriter {
  private plan: InsertPlan | null = null;

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

  private insertPlan(): InsertPlan {
    if (this.plan) return this.plan;
    const meta = this.dataSource.getMetadata(AuditEvent);
    const columns = meta.columns.map((c) => {
      const t = c.transformer;
      const to = t && !Array.isArray(t) ? (v: unknown) => t.to(v) as unknown : null;
      return { name: c.databaseName, property: c.propertyName, to, type: String(c.type) };
    });
    const names = columns.map((c) => `"${c.name}"`).join(', ');
    const types = columns.map((c) => `"${c.name}" ${c.type}`).join(', ');
    const sql =
      `INSERT INTO "${meta.tableName}" (${names}) SELECT ${names} FROM jsonb_to_recordset($1::jsonb) AS r(${types}) ` +
      `ON CONFLICT DO NOTHING RETURNING id`;
    return (this.plan = { sql, columns });
  }

  private async insertRows(rows: AuditEvent[]): Promise<number> {
    const plan = this.insertPlan();
    const records = rows.map((row) => {
      const r: Record<string, unknown> = {};
      for (const c of plan.columns) {
        const v = (row as unknown as Record<string, unknown>)[c.property];
        r[c.name] = c.to ? c.to(v) : v;
      }
      return r;
    });
    const json = JSON.stringify(records);
    const insert = async (manager: EntityManager) =>
      (await manager.query(plan.sql, [json])) as Array<{ id: string }>;
    const sink = this.sink;
    // With a sink, its rows commit with the audit rows or not at all.
    const write = sink
      ? this.dataSource.transaction(async (manager) => {
          const inserted = await insert(manager);
          const ids = new Set(inserted.map((r) => r.id));
          await sink.write(
            manager,
            rows.filter((r) => ids.has(r.id)),
          );
          return inserted;
        })
      : insert(this.dataSource.manager);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new AuditWriteTimeout(this.writeTimeoutMs)), this.writeTimeoutMs);
    });
    // The abandoned write may still finish; its rejection must not surface as unhandled.
    write.catch(() => undefined);
    try {
      return (await Promise.race([write, timeout])).length;
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
