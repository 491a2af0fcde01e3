import { Command, Option } from 'commander';
import type { AuditEvent } from '@gatehouse/audit';
// The lean entry (no Nest, no TypeORM): `gatehouse audit` runs the lib's own statements over a
// bare connection (CliContext.withSql), the same ones AuditQueryService runs for the admin API.
import {
  AUDIT_FIELDS,
  auditCsv,
  AUDIT_QUERY_MAX_LIMIT,
  AuditQueryFilters,
  AuditTimeError,
  findAuditEvents,
  parseAuditTime,
} from '@gatehouse/audit/query';
import type { CliContext } from '../cli-context';
import { CliError } from '../cli-error';
import { Column } from '../output';
import { visible } from '../terminal-text';
import { shortDigest } from '../verify/verify-result';

type AuditFormat = 'table' | 'json' | 'csv';

interface AuditOptions {
  member?: string;
  repository?: string;
  kind?: 'image' | 'releases' | 'packages';
  action?: string;
  outcome?: string;
  reason?: string;
  since?: string;
  until?: string;
  ip?: string;
  requestId?: string;
  memberTag?: string;
  clientRequestId?: string;
  limit: string;
  format: AuditFormat;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

// One CSV and one field list for the CLI and the console (libs/audit).
export { AUDIT_FIELDS, auditCsv } from '@gatehouse/audit/query';

/** `2026-03-01 12:00:05`: the table's times are UTC, to the second. */
const shortTime = (d: Date) => d.toISOString().slice(0, 19).replace('T', ' ');

/** Enough of a request id to tell rows apart; `--request-id` accepts it as a prefix. */
export const SHORT_REQUEST_ID = 8;
const shortId = (id: string | null) =>
  id && id.length > SHORT_REQUEST_ID + 1 ? `${id.slice(0, SHORT_REQUEST_ID)}…` : id;

const DIGEST = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-f0-9]{32,}$/i;

/** `acme/app:v1.0.0`, `acme/app@sha256:0123456789ab…`: what was asked for, in one short cell. */
export function imageCell(e: Pick<AuditEvent, 'repository' | 'reference' | 'digest'>): string {
  const ref = e.reference ?? e.digest;
  if (!ref) return e.repository ?? '';
  const part = DIGEST.test(ref) ? `@${shortDigest(ref)}` : `:${ref}`;
  return `${e.repository ?? ''}${part}`;
}

/**
 * The table keeps what support reads first, short enough for a terminal: times to the second,
 * short request ids and digests, the client IP only where it fits. `--wide` shows every column
 * in full (the user agent too); JSON and CSV carry every field.
 */
const TABLE_COLUMNS: Column<AuditEvent>[] = [
  { header: 'time (UTC)', value: (e) => shortTime(e.occurredAt), keep: true },
  { header: 'user', value: (e) => e.username, wrapFirst: true },
  { header: 'ip', value: (e) => e.clientIp, optional: true },
  { header: 'action', value: (e) => e.action },
  { header: 'image', value: imageCell, wrapFirst: true },
  { header: 'result', value: (e) => [e.outcome, e.httpStatus].filter((v) => v !== null).join(' ') },
  { header: 'reason', value: (e) => e.reason },
  { header: 'request', value: (e) => shortId(e.requestId), keep: true },
];

const WIDE_COLUMNS: Column<AuditEvent>[] = [
  { header: 'time', value: (e) => e.occurredAt },
  { header: 'user', value: (e) => e.username },
  { header: 'ip', value: (e) => e.clientIp },
  { header: 'action', value: (e) => e.action },
  { header: 'repository', value: (e) => e.repository },
  { header: 'reference', value: (e) => e.reference ?? e.digest },
  { header: 'outcome', value: (e) => e.outcome },
  { header: 'reason', value: (e) => e.reason },
  { header: 'status', value: (e) => e.httpStatus },
  { header: 'bytes', value: (e) => e.bytes },
  { header: 'cache', value: (e) => e.cache },
  { header: 'ms', value: (e) => e.durationMs },
  { header: 'user agent', value: (e) => e.userAgent },
  { header: 'request id', value: (e) => e.requestId },
  { header: 'client request id', value: (e) => e.clientRequestId },
  { header: 'member tag', value: (e) => e.clientMemberTag },
];

export function auditJson(e: AuditEvent): Record<(typeof AUDIT_FIELDS)[number], unknown> {
  return Object.fromEntries(AUDIT_FIELDS.map((f) => [f, e[f]])) as Record<
    (typeof AUDIT_FIELDS)[number],
    unknown
  >;
}

/** Fewer characters than this would match rows of unrelated requests. */
export const MIN_REQUEST_ID_PREFIX = 4;

/**
 * `--request-id`: a whole id, or its first characters as the table and the docs show them
 * (`5f0c1a2b…`; a trailing ellipsis is ignored). The whole id is looked up first (indexed);
 * only when no row has it is it taken as a prefix.
 */
export function requestIdValue(value: string): string {
  const id = value.trim().replace(/(…|\.\.\.)$/, '');
  if (id.length < MIN_REQUEST_ID_PREFIX)
    throw new CliError(
      `--request-id needs at least ${MIN_REQUEST_ID_PREFIX} characters of the id (got "${visible(value)}")`,
      2,
    );
  return id;
}

/** `--member-tag`: a whole tag as a mirror Gatehouse sends it (`m1-` and 32 hex digits). */
export function memberTagValue(value: string): string {
  const tag = value.trim();
  if (!/^[A-Za-z0-9._:-]{1,64}$/.test(tag))
    throw new CliError(
      `--member-tag is a tag as the audit shows it, e.g. m1-0123… (got "${visible(value)}")`,
      2,
    );
  return tag;
}

/** `--client-request-id`: a whole id as a client sent it (a mirror Gatehouse's own request id). */
export function clientRequestIdValue(value: string): string {
  const id = value.trim();
  if (id.length === 0 || id.length > 200)
    throw new CliError(`--client-request-id is a whole id as a client sent it (got "${visible(value)}")`, 2);
  return id;
}

function time(value: string | undefined, option: string, now: Date): Date | undefined {
  if (value === undefined) return undefined;
  try {
    return parseAuditTime(value, now);
  } catch (e) {
    if (e instanceof AuditTimeError) throw new CliError(`${option}: ${e.message}`, 2);
    throw e;
  }
}

/** Command-line options → the query filters (exit 2 on a bad value). */
export function auditFilters(opts: AuditOptions, now = new Date()): AuditQueryFilters {
  const limit = Number(opts.limit);
  if (!Number.isInteger(limit) || limit < 1 || limit > AUDIT_QUERY_MAX_LIMIT)
    throw new CliError(`--limit must be a whole number from 1 to ${AUDIT_QUERY_MAX_LIMIT}`, 2);
  const filters: AuditQueryFilters = {
    repository: opts.repository,
    kind: opts.kind,
    action: opts.action,
    outcome: opts.outcome,
    reason: opts.reason,
    clientIp: opts.ip,
    requestId: opts.requestId === undefined ? undefined : requestIdValue(opts.requestId),
    memberTag: opts.memberTag === undefined ? undefined : memberTagValue(opts.memberTag),
    clientRequestId:
      opts.clientRequestId === undefined ? undefined : clientRequestIdValue(opts.clientRequestId),
    since: time(opts.since, '--since', now),
    until: time(opts.until, '--until', now),
    limit,
  };
  // A member id (as in the JSON output) works as well as a username.
  if (opts.member !== undefined) {
    if (UUID.test(opts.member)) filters.memberId = opts.member.toLowerCase();
    else filters.username = opts.member;
  }
  if (filters.since && filters.until && filters.since >= filters.until)
    throw new CliError('--since must be earlier than --until', 2);
  return Object.fromEntries(Object.entries(filters).filter(([, v]) => v !== undefined)) as AuditQueryFilters;
}

export function register(program: Command, ctx: CliContext): void {
  const audit = program
    .command('audit')
    .description('search the audit log, newest first (every filter given must match)')
    .option('--member <username>', 'attempted or known username (or member id)')
    .option('--repository <name>', 'repository, e.g. acme/app')
    .addOption(
      new Option(
        '--kind <kind>',
        'what the target is: images, or the releases and packages of downloads',
      ).choices(['image', 'releases', 'packages']),
    )
    .option('--action <action>', 'e.g. token.issue, token.refuse, manifest.get, blob.get, tags.list')
    .addOption(new Option('--outcome <outcome>', 'result').choices(['allowed', 'denied', 'error']))
    .option('--reason <code>', 'reason code, e.g. tag_not_entitled, key_revoked, bad_credentials')
    .option('--since <when>', 'from this time: 30m, 6h, 1d, 2w back, or an ISO date/date-time (UTC)')
    .option('--until <when>', 'before this time (same forms as --since)')
    .option('--ip <address>', 'client IP')
    .option(
      '--request-id <id>',
      'request id (the X-Request-Id a client, an error or a log line shows), or its first 4+ characters',
    )
    .option(
      '--member-tag <tag>',
      "a mirror Gatehouse's tag of its member (client_member_tag), to find that member's requests",
    )
    .option(
      '--client-request-id <id>',
      "the X-Request-Id a client sent (client_request_id): a mirror Gatehouse's own request id",
    )
    .option('--limit <n>', `at most this many events (1..${AUDIT_QUERY_MAX_LIMIT})`, '100')
    .addOption(
      new Option('--format <format>', 'output format').choices(['table', 'json', 'csv']).default('table'),
    )
    .action(async (opts: AuditOptions) => {
      const filters = auditFilters(opts);
      const events = await ctx.withSql(
        async (run) => {
          const exact = await findAuditEvents(run, filters);
          if (exact.length > 0 || filters.requestId === undefined) return exact;
          const { requestId, ...rest } = filters;
          return findAuditEvents(run, { ...rest, requestIdPrefix: requestId });
        },
        { readOnly: true },
      );
      if (opts.format === 'json') return ctx.out.json(events.map(auditJson));
      if (opts.format === 'csv') return void ctx.io.stdout.write(auditCsv(events));
      ctx.out.records(events, ctx.out.wide ? WIDE_COLUMNS : TABLE_COLUMNS, 'table', 'No audit events match.');
      if (events.length === filters.limit)
        ctx.out.error(`(showing the newest ${events.length}; narrow the filters or raise --limit for more)`);
    });

  audit
    .command('prune')
    .description('delete audit events older than the retention period, in small batches')
    .option('--older-than <when>', 'cut-off: 90d, 2w, or an ISO date (default: AUDIT_RETENTION_DAYS days)')
    .option('--dry-run', 'only count what would be deleted')
    .option('--batch-size <n>', 'rows per DELETE statement', '5000')
    .action(async (opts: { olderThan?: string; dryRun?: boolean; batchSize: string }, cmd: Command) => {
      // --format is the parent's option (commander reads it on either side of "prune").
      const format = (cmd.optsWithGlobals() as { format?: string }).format ?? 'table';
      if (format === 'csv') throw new CliError('audit prune prints table or json, not csv', 2);
      const now = new Date();
      let cutoff: Date;
      if (opts.olderThan !== undefined) {
        cutoff = time(opts.olderThan, '--older-than', now)!;
      } else {
        const days = ctx.config.audit.retentionDays;
        if (days <= 0)
          throw new CliError(
            'AUDIT_RETENTION_DAYS is 0 (keep forever), so there is no default cut-off. Pass --older-than, e.g. --older-than 365d',
            2,
          );
        cutoff = new Date(now.getTime() - days * 86_400_000);
      }
      const batchSize = Number(opts.batchSize);
      if (!Number.isInteger(batchSize) || batchSize < 1)
        throw new CliError('--batch-size must be a whole number of rows, at least 1', 2);
      const { AuditRetentionService } = await import('@gatehouse/audit');
      const result = await ctx.withApp(
        async (app) => {
          const retention = app.get(AuditRetentionService);
          if (opts.dryRun) return { wouldDelete: await retention.countOlderThan(cutoff) };
          return retention.prune(cutoff, { batchSize });
        },
        { readOnly: true },
      );
      const olderThan = cutoff.toISOString();
      if (format === 'json') return ctx.out.json({ olderThan, dryRun: !!opts.dryRun, ...result });
      if ('wouldDelete' in result)
        return ctx.out.line(
          `${result.wouldDelete} audit events are older than ${olderThan} (dry run: nothing deleted).`,
        );
      ctx.out.line(
        `Deleted ${result.deleted} audit events older than ${olderThan} in ${result.batches} batch${result.batches === 1 ? '' : 'es'}.`,
      );
    });
}
