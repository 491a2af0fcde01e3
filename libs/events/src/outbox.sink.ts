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
    if (pulls.length > 0) wrote = (await this.insertPulls(manager, pulls)) || wrote;
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
   * One event per pull, decided for the whole batch at once (one read, at most one withdrawal and
   * two inserts, whatever the number of pulls: a statement per pull made a busy registry's audit
   * batches slow). In the batch's order, per pull key: a GET withdraws the pull's held
   * `pull.checked` and is one `pull.manifest` unless the pull already has one; a HEAD is a
   * `pull.checked` held a moment, unless the pull already has an event.
   */
  private async insertPulls(manager: EntityManager, drafts: OutboxDraft[]): Promise<boolean> {
    const ms = (d: OutboxDraft) => Date.parse(d.event.time);
    const windowMs = PULL_WINDOW_SECONDS * 1000;
    const keys = [...new Set(drafts.map((d) => d.pullKey!))];
    const times = drafts.map(ms);
    const rows: Array<{ id: string; pull_key: string; type: string; created_at: Date; held: boolean }> =
      await manager.query(
        `SELECT id, pull_key, type, created_at, dispatched_at IS NULL AS held FROM event_outbox
          WHERE pull_key = ANY($1::text[]) AND NOT withdrawn AND type IN ('pull.manifest', 'pull.checked')
            AND created_at > $2::timestamptz - interval '${PULL_WINDOW_SECONDS} seconds'
            AND created_at <= $3::timestamptz + interval '${PULL_WINDOW_SECONDS} seconds'`,
        [keys, new Date(Math.min(...times)).toISOString(), new Date(Math.max(...times)).toISOString()],
      );
    interface Known {
      id?: string;
      draft?: OutboxDraft;
      type: string;
      at: number;
      held: boolean;
      withdrawn: boolean;
    }
    const known = new Map<string, Known[]>();
    for (const r of rows) {
      const list = known.get(r.pull_key) ?? [];
      list.push({
        id: r.id,
        type: r.type,
        at: new Date(r.created_at).getTime(),
        held: r.held,
        withdrawn: false,
      });
      known.set(r.pull_key, list);
    }
    for (const draft of drafts) {
      const list = known.get(draft.pullKey!) ?? [];
      known.set(draft.pullKey!, list);
      const at = ms(draft);
      const near = (k: Known) => !k.withdrawn && k.at > at - windowMs && k.at <= at + windowMs;
      if (draft.event.type === 'pull.manifest') {
        for (const k of list)
          if (k.type === 'pull.checked' && k.held && !k.withdrawn && k.at > at - windowMs) k.withdrawn = true;
        if (list.some((k) => near(k) && k.type === 'pull.manifest')) continue;
      } else if (list.some(near)) continue;
      list.push({ draft, type: draft.event.type, at, held: true, withdrawn: false });
    }
    const all = [...known.values()].flat();
    const withdraw = all.filter((k) => k.withdrawn && k.id).map((k) => k.id!);
    if (withdraw.length > 0)
      await manager.query(
        `UPDATE event_outbox SET withdrawn = true, dispatched_at = now(), nats_pending = false
          WHERE id = ANY($1::uuid[]) AND dispatched_at IS NULL`,
        [withdraw],
      );
    const fresh = all.filter((k) => k.draft && !k.withdrawn).map((k) => k.draft!);
    const manifests = fresh.filter((d) => d.event.type === 'pull.manifest');
    const checks = fresh.filter((d) => d.event.type === 'pull.checked');
    let wrote = false;
    if (manifests.length > 0) wrote = await this.insert(manager, manifests);
    if (checks.length > 0) wrote = (await this.insert(manager, checks, PULL_CHECK_HOLD_SECONDS)) || wrote;
    return wrote;
  }
}
