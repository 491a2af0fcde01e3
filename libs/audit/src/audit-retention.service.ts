import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';

export interface PruneOptions {
  /** Rows deleted per statement (each its own short transaction). Default 5 000. */
  batchSize?: number;
  /** Pause between batches, so a large prune leaves room for the writer and support queries. */
  pauseMs?: number;
  /** Checked between batches: a shutdown stops a prune after the current batch. */
  shouldStop?: () => boolean;
}

export interface PruneResult {
  deleted: number;
  batches: number;
  /** True when `shouldStop` ended the prune before every old row was gone. */
  stopped: boolean;
}

/** Deletes audit rows older than the retention period, in bounded batches. */
@Injectable()
export class AuditRetentionService {
  constructor(private readonly dataSource: DataSource) {}

  /** Rows that `prune(olderThan)` would delete. */
  async countOlderThan(olderThan: Date): Promise<number> {
    const rows: Array<{ n: number }> = await this.dataSource.query(
      'SELECT count(*)::int AS n FROM audit_events WHERE occurred_at < $1',
      [olderThan],
    );
    return rows[0]?.n ?? 0;
  }

  /**
   * Deletes rows with `occurred_at < olderThan`, oldest first, `batchSize` rows per statement.
   * Each batch commits on its own: row locks and WAL stay small, inserts and queries go on.
   */
  async prune(olderThan: Date, options: PruneOptions = {}): Promise<PruneResult> {
    const batchSize = Math.max(1, Math.floor(options.batchSize ?? 5_000));
    const pauseMs = options.pauseMs ?? 0;
    let deleted = 0;
    let batches = 0;
    for (;;) {
      if (options.shouldStop?.()) return { deleted, batches, stopped: true };
      // The subquery walks audit_events_occurred_at_idx from the oldest end.
      const [, count] = (await this.dataSource.query(
        `DELETE FROM audit_events WHERE id IN (
           SELECT id FROM audit_events WHERE occurred_at < $1 ORDER BY occurred_at LIMIT $2
         )`,
        [olderThan, batchSize],
      )) as [unknown, number];
      batches++;
      deleted += count;
      if (count < batchSize) return { deleted, batches, stopped: false };
      if (pauseMs > 0) await new Promise((r) => setTimeout(r, pauseMs));
    }
  }
}
