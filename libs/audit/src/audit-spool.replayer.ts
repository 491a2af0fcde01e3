import { AppLogger } from '@gatehouse/observability';
import { AuditBatchWriter } from './audit-batch.writer';
import { AuditSpool } from './audit-spool';
import { AuditMetrics } from './audit.metrics';

/**
 * Owns the disk spool for this process and replays it into the database: segments oldest first,
 * each deleted only once its rows are committed. A spool left by a crash is taken over and
 * replayed at the next start.
 */
export class AuditSpoolReplayer {
  private unavailableLogged = false;

  constructor(
    private readonly spool: AuditSpool | null,
    private readonly writer: AuditBatchWriter,
    private readonly metrics: AuditMetrics,
    private readonly logger: AppLogger,
    private readonly batchSize: number,
  ) {}

  /** Bytes waiting in the disk spool of this process. */
  get pendingBytes(): number {
    return this.spool?.isOwner ? this.spool.bytes : 0;
  }

  get dir(): string | null {
    return this.spool?.options.dir ?? null;
  }

  /** Takes the spool on first use (or returns null: none configured, or another process owns it). */
  own(): AuditSpool | null {
    if (!this.spool) return null;
    try {
      if (this.spool.acquire()) return this.spool;
      if (!this.unavailableLogged) {
        this.unavailableLogged = true;
        this.logger.warn(
          { dir: this.dir },
          'the audit spool is in use by another process; this process keeps unwritten audit events in memory only',
        );
      }
    } catch (e) {
      if (!this.unavailableLogged) {
        this.unavailableLogged = true;
        this.logger.error({ err: e, dir: this.dir }, 'the audit spool directory is not usable');
      }
    }
    return null;
  }

  /** At start: a spool directory that holds segments is taken over. True when there is a replay to run. */
  resume(): boolean {
    if (!this.spool) return false;
    let segments: number;
    try {
      segments = this.spool.segments().length;
    } catch (e) {
      this.logger.error({ err: e, dir: this.dir }, 'the audit spool directory is not readable');
      return false;
    }
    if (segments === 0 || !this.own()) return false;
    this.logger.info(
      { segments, bytes: this.spool.bytes },
      'replaying audit events spooled while the database was unreachable',
    );
    return true;
  }

  /** fsyncs what was appended since the last call. */
  async sync(): Promise<void> {
    await this.spool?.sync().catch((e: unknown) => this.logger.error({ err: e }, 'audit spool fsync failed'));
  }

  release(): void {
    this.spool?.release();
  }

  /** Replays the spool's segments oldest first; `progress` runs after each segment. */
  async replay(progress: () => void): Promise<'nothing' | 'replayed' | 'failed'> {
    const spool = this.spool;
    if (!spool?.isOwner || spool.bytes === 0) return 'nothing';
    // Everything on disk is replayed, so the segment being appended to is closed first.
    spool.seal();
    for (const segment of spool.sealedSegments()) {
      let read;
      try {
        read = await spool.read(segment.file);
      } catch (e) {
        this.logger.error(
          { err: e, file: segment.file },
          'audit spool segment is not readable; left in place',
        );
        continue;
      }
      try {
        for (let i = 0; i < read.events.length; i += this.batchSize)
          await this.writer.insert(read.events.slice(i, i + this.batchSize));
      } catch (e) {
        this.logger.warn({ err: e }, 'audit spool replay interrupted: the database is unreachable');
        return 'failed';
      }
      // Only now are its rows committed: deleting earlier could lose them to a crash.
      await spool.remove(segment);
      if (read.torn > 0) {
        this.metrics.torn.inc(read.torn);
        this.logger.warn(
          { file: segment.file, torn: read.torn },
          'skipped audit spool lines cut short by a crash',
        );
      }
      this.logger.info({ events: read.events.length }, 'replayed audit events from the spool');
      progress();
    }
    return 'replayed';
  }
}
