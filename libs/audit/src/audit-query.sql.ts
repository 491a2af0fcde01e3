import type { AuditEvent } from './audit-event.entity';

// The audit search as plain SQL: the one place its statements are written. AuditQueryService (the
// admin API, `gatehouse explain`) runs them through TypeORM's pool; the CLI's read-only fast path
// runs them through a bare `pg` client. This file loads neither Nest nor TypeORM (only a type
// import), so a short-lived CLI process does not pay for their metadata to run one SELECT.

/**
 * Filters of an audit search; every one given must match. Shared by `gatehouse audit` and the
 * admin API: new filters are added as optional fields, existing ones keep their meaning.
 */
export interface AuditQueryFilters {
  /** Attempted or known username (case-insensitive). */
  username?: string;
  memberId?: string;
  repository?: string;
  /**
   * What the target is: `releases` and `packages` are the downloads' targets (`releases:…`,
   * `packages:…`), `image` any other repository. Rows naming no repository never match.
   */
  kind?: 'image' | 'releases' | 'packages';
  action?: string;
  outcome?: string;
  reason?: string;
  requestId?: string;
  /** Request ids starting with this text (the short ids the CLI table shows). Not indexed. */
  requestIdPrefix?: string;
  /** A mirror's tag of its member, as recorded (`client_member_tag`). */
  memberTag?: string;
  /** The X-Request-Id a client (a proxy, a mirror Gatehouse) sent, as recorded (`client_request_id`). */
  clientRequestId?: string;
  /** Client IP as recorded (X-Forwarded-For only from trusted proxies). */
  clientIp?: string;
  /** Inclusive lower bound on occurredAt. */
  since?: Date;
  /** Exclusive upper bound on occurredAt. */
  until?: Date;
  /** Default 100, at most 10 000. */
  limit?: number;
}

export const AUDIT_QUERY_MAX_LIMIT = 10_000;

/** One parameterised statement, as `pg` and `DataSource.query` take it. */
export interface AuditSql {
  text: string;
  values: unknown[];
}

/** Runs a statement and resolves to its rows (a `pg` client, or TypeORM's `DataSource.query`). */
export type AuditSqlRunner = (sql: AuditSql) => Promise<Array<Record<string, unknown>>>;

/** Every column of audit_events, in the entity's order (the row mapper below reads these). */
const COLUMNS = [
  'id',
  'occurred_at',
  'request_id',
  'client_request_id',
  'client_member_tag',
  'member_id',
  'username',
  'client_ip',
  'user_agent',
  'action',
  'repository',
  'reference',
  'digest',
  'outcome',
  'reason',
  'http_status',
  'bytes',
  'cache',
  'duration_ms',
  'upstream_status',
  'details',
] as const;

const NEWEST_FIRST = 'ORDER BY e.occurred_at DESC, e.id DESC';

/** Collects conditions and their `$n` parameters. */
class Where {
  readonly conditions: string[] = [];
  readonly values: unknown[] = [];

  /** `sql` names its parameter `?`; it becomes the next `$n`. */
  add(sql: string, ...values: unknown[]): this {
    let i = 0;
    this.conditions.push(sql.replace(/\?/g, () => `$${this.values.length + ++i}`));
    this.values.push(...values);
    return this;
  }

  select(limit: number): AuditSql {
    const where = this.conditions.length > 0 ? ` WHERE ${this.conditions.join(' AND ')}` : '';
    return {
      text: `SELECT ${COLUMNS.map((c) => `e.${c}`).join(', ')} FROM audit_events e${where} ${NEWEST_FIRST} LIMIT ${limit}`,
      values: this.values,
    };
  }
}

/** The search `gatehouse audit` and `GET /admin/audit` run: newest events first. */
export function auditFindSql(filters: AuditQueryFilters = {}): AuditSql {
  const w = new Where();
  if (filters.username !== undefined) w.add('e.username = ?', filters.username.toLowerCase());
  if (filters.memberId !== undefined) w.add('e.member_id = ?', filters.memberId);
  if (filters.repository !== undefined) w.add('e.repository = ?', filters.repository);
  if (filters.kind === 'image')
    w.add("e.repository NOT LIKE 'releases:%' AND e.repository NOT LIKE 'packages:%'");
  else if (filters.kind !== undefined) w.add('e.repository LIKE ?', `${filters.kind}:%`);
  if (filters.action !== undefined) w.add('e.action = ?', filters.action);
  if (filters.outcome !== undefined) w.add('e.outcome = ?', filters.outcome);
  if (filters.reason !== undefined) w.add('e.reason = ?', filters.reason);
  if (filters.requestId !== undefined) w.add('e.request_id = ?', filters.requestId);
  if (filters.requestIdPrefix !== undefined)
    w.add(
      "e.request_id LIKE ? ESCAPE '\\'",
      filters.requestIdPrefix.replace(/[\\%_]/g, (c) => `\\${c}`) + '%',
    );
  if (filters.clientIp !== undefined) w.add('e.client_ip = ?', filters.clientIp);
  if (filters.memberTag !== undefined) w.add('e.client_member_tag = ?', filters.memberTag);
  if (filters.clientRequestId !== undefined) w.add('e.client_request_id = ?', filters.clientRequestId);
  if (filters.since !== undefined) w.add('e.occurred_at >= ?', filters.since);
  if (filters.until !== undefined) w.add('e.occurred_at < ?', filters.until);
  const limit = Math.min(Math.max(1, Math.floor(filters.limit ?? 100)), AUDIT_QUERY_MAX_LIMIT);
  return w.select(limit);
}

/**
 * Refusals of credentials name no repository: the token endpoint's (`token.refuse`, which also
 * records a download's refused Basic credentials) and the Bearer refusals of the registry and the
 * downloads. `gatehouse explain` lists them apart, labelled as logins, never as events of a target.
 */
export const CREDENTIAL_REFUSAL_ACTIONS = ['token.refuse', 'registry.auth.refuse', 'download.auth.refuse'];

/**
 * The three statements behind `gatehouse explain`: a member's refusals for one target (denied or
 * error), its latest allowed events there, and the refused logins of the member or its username
 * (which name no target); each newest first.
 */
export function auditExplainSql(
  who: { username: string; memberId?: string | null },
  repository: string,
  limits: { refusals?: number; allowed?: number; logins?: number } = {},
): { refusals: AuditSql; allowed: AuditSql; logins: AuditSql } {
  const base = () =>
    who.memberId
      ? new Where().add('(e.username = ? OR e.member_id = ?)', who.username.toLowerCase(), who.memberId)
      : new Where().add('e.username = ?', who.username.toLowerCase());
  return {
    refusals: base()
      .add("e.outcome <> 'allowed'")
      .add('e.repository = ?', repository)
      .select(limits.refusals ?? 5),
    allowed: base()
      .add("e.outcome = 'allowed'")
      .add('e.repository = ?', repository)
      .select(limits.allowed ?? 3),
    logins: base()
      .add("e.outcome <> 'allowed'")
      .add('e.repository IS NULL')
      .add(
        `e.action IN (${CREDENTIAL_REFUSAL_ACTIONS.map(() => '?').join(', ')})`,
        ...CREDENTIAL_REFUSAL_ACTIONS,
      )
      .select(limits.logins ?? 5),
  };
}

/** pg returns bigint as a string; audit byte counts stay far below 2^53. */
const bigintAsNumber = (v: unknown) => (v === null || v === undefined ? null : Number(v));

/** A row of the statements above → the event, with the entity's field names and types. */
export function auditEventFromRow(row: Record<string, unknown>): AuditEvent {
  const details = row.details;
  return {
    id: row.id as string,
    occurredAt: row.occurred_at instanceof Date ? row.occurred_at : new Date(row.occurred_at as string),
    requestId: row.request_id as string | null,
    clientRequestId: row.client_request_id as string | null,
    clientMemberTag: (row.client_member_tag as string | null) ?? null,
    memberId: row.member_id as string | null,
    username: row.username as string | null,
    clientIp: row.client_ip as string | null,
    userAgent: row.user_agent as string | null,
    action: row.action as string,
    repository: row.repository as string | null,
    reference: row.reference as string | null,
    digest: row.digest as string | null,
    outcome: row.outcome as string,
    reason: row.reason as string | null,
    httpStatus: row.http_status as number | null,
    bytes: bigintAsNumber(row.bytes),
    cache: row.cache as string | null,
    durationMs: row.duration_ms as number | null,
    upstreamStatus: row.upstream_status as number | null,
    details: (typeof details === 'string' ? JSON.parse(details) : details) as Record<string, unknown> | null,
  };
}

/** The search, run by `run`: the admin API and the CLI's fast path both call this. */
export async function findAuditEvents(
  run: AuditSqlRunner,
  filters: AuditQueryFilters = {},
): Promise<AuditEvent[]> {
  return (await run(auditFindSql(filters))).map(auditEventFromRow);
}

export interface ExplainEvents {
  /** The target's events: refusals first, then the latest allowed. */
  target: AuditEvent[];
  /** Refused logins of the member (or of its username, typed by anyone). */
  loginRefusals: AuditEvent[];
}

/** `gatehouse explain`'s events, run by `run`. */
export async function findExplainEvents(
  run: AuditSqlRunner,
  who: { username: string; memberId?: string | null },
  repository: string,
  limits: { refusals?: number; allowed?: number; logins?: number } = {},
): Promise<ExplainEvents> {
  const sql = auditExplainSql(who, repository, limits);
  const refusals = await run(sql.refusals);
  const allowed = await run(sql.allowed);
  const logins = await run(sql.logins);
  return {
    target: [...refusals, ...allowed].map(auditEventFromRow),
    loginRefusals: logins.map(auditEventFromRow),
  };
}
