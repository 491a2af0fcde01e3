import { EntityManager } from 'typeorm';
import type { AuditEvent, AuditRowSink } from '@gatehouse/audit';
import { eventFromAuditRow, OutboxDraft } from './audit-event.map';
import { EventsMetrics } from './events.metrics';
import { notifyEventsWork } from './outbox-wakeup';

/** The parts of one pull (HEAD by tag, GET of the index, GET of a child) within this window are one pull. */
export const PULL_WINDOW_SECONDS = 30;
/** A `pull.checked` waits this long for the GET that would make it part of a pull. */
export const PULL_CHECK_HOLD_SECONDS = 10;

const COLUMNS = 8;

/**
 * Writes the CloudEvent of each audit row into `event_outbox`, in the audit batch's transaction
 * (AuditRowSink): an event and its audit row commit together or not at all, and a spool replay
 * writes only the rows it actually inserted. Pulls are made one event per pull here (see
 * dev-docs/events.md, "One event per pull"). A batch that wrote an event also notifies
 * `EVENTS_WAKE_CHANNEL` once: every replica's worker wakes when the transaction commits.
 */
export class OutboxSink implements AuditRowSink {
  constructor(
    private readonly source: string,
    private readonly natsEnabled: boolean,
    private readonly metrics: EventsMetrics,
  ) {}

  async write(manager: EntityManager, rows: AuditEvent[]): Promise<void> {
    const plain: OutboxDraft[] = [];
    const pulls: OutboxDraft[] = [];
    for (const row of rows) {
      const draft = eventFromAuditRow(row, this.source);
      if (!draft) continue;
      (draft.pullKey ? pulls : plain).push(draft);
    }
    let wrote = false;
    if (plain.length > 0) wrote = await this.insert(manager, plain);
    for (const pull of pulls) wrote = (await this.insertPull(manager, pull)) || wrote;
    if (wrote) await notifyEventsWork(manager);
  }

  /** True when a row was inserted (a replayed id is skipped). */
  private async insert(manager: EntityManager, drafts: OutboxDraft[], holdSeconds = 0): Promise<boolean> {
    const values: unknown[] = [];
    const tuples = drafts.map((d, i) => {
      values.push(
        d.event.id,
        d.event.type,
        d.memberId,
        d.repository,
        d.pullKey,
        JSON.stringify(d.event),
        d.event.time,
        this.natsEnabled,
      );
      const b = i * COLUMNS;
      return `($${b + 1}::uuid, $${b + 2}, $${b + 3}::uuid, $${b + 4}, $${b + 5}, $${b + 6}::jsonb, $${b + 7}::timestamptz, $${b + 7}::timestamptz + interval '${holdSeconds} seconds', $${b + 8}::boolean)`;
    });
    const inserted: unknown[] = await manager.query(
      `INSERT INTO event_outbox (id, type, member_id, repository, pull_key, payload, created_at, available_at, nats_pending)
       VALUES ${tuples.join(', ')} ON CONFLICT (id) DO NOTHING RETURNING 1`,
      values,
    );
    for (const d of drafts) this.metrics.produced.inc({ type: d.event.type });
    return inserted.length > 0;
  }

  /**
   * A GET withdraws the pull's held `pull.checked` and is one `pull.manifest` unless the same pull
   * already has one; a HEAD is a `pull.checked` held a moment, unless the pull already has an event.
   */
  private async insertPull(manager: EntityManager, draft: OutboxDraft): Promise<boolean> {
    const { pullKey, event } = draft;
    if (event.type === 'pull.manifest') {
      await manager.query(
        `UPDATE event_outbox SET withdrawn = true, dispatched_at = now(), nats_pending = false
          WHERE pull_key = $1 AND type = 'pull.checked' AND dispatched_at IS NULL
            AND created_at > $2::timestamptz - interval '${PULL_WINDOW_SECONDS} seconds'`,
        [pullKey, event.time],
      );
    }
    const seen: unknown[] = await manager.query(
      `SELECT 1 FROM event_outbox
        WHERE pull_key = $1 AND NOT withdrawn AND type = ANY($3::text[])
          AND created_at > $2::timestamptz - interval '${PULL_WINDOW_SECONDS} seconds'
          AND created_at <= $2::timestamptz + interval '${PULL_WINDOW_SECONDS} seconds'
        LIMIT 1`,
      [
        pullKey,
        event.time,
        event.type === 'pull.manifest' ? ['pull.manifest'] : ['pull.manifest', 'pull.checked'],
      ],
    );
    if (seen.length > 0) return false;
    return this.insert(manager, [draft], event.type === 'pull.checked' ? PULL_CHECK_HOLD_SECONDS : 0);
  }
}
