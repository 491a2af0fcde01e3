import { describeErrorResponse } from './oci-envelope';
import { fail, pass, RowResult, RowStatus, skip } from './verify-result';
import { VerifySession } from './verify-session';

export const AUDIT_ROW = 'audit';

/** The fields of an audit event the verifier looks at (the admin API may send more). */
export interface AuditRowLike {
  action?: string;
  outcome?: string;
  reason?: string | null;
  repository?: string | null;
  reference?: string | null;
  cache?: string | null;
}

export interface AuditExpectation {
  /** Which earlier row caused the event, for the evidence. */
  label: string;
  match: Partial<Record<keyof AuditRowLike, string>>;
}

/** What the rows that passed must have left in the audit trail. */
export function auditExpectations(
  s: VerifySession,
  results: ReadonlyMap<string, RowStatus>,
): AuditExpectation[] {
  const { repository, tag, unentitledTag } = s.options;
  const passed = (row: string) => results.get(row) === 'PASS' || results.get(row) === 'WARN';
  const out: AuditExpectation[] = [];
  if (passed('login')) out.push({ label: 'login', match: { action: 'token.issue', outcome: 'allowed' } });
  if (passed('entitled pull'))
    out.push({
      label: 'entitled pull',
      match: { action: 'manifest.get', outcome: 'allowed', repository, reference: tag },
    });
  if (passed('cache hit'))
    out.push({
      label: 'cache hit',
      match: { action: 'blob.get', outcome: 'allowed', repository, cache: 'hit' },
    });
  if (passed('pinned tag'))
    out.push({
      label: 'pinned tag',
      match: {
        action: 'manifest.get',
        outcome: 'denied',
        reference: unentitledTag,
        reason: 'tag_not_entitled',
      },
    });
  if (passed('denial: unknown repository'))
    out.push({
      label: 'unknown repository',
      match: { action: 'manifest.get', outcome: 'denied', repository: s.options.unknownRepository },
    });
  if (passed('denial: bad credentials'))
    out.push({
      label: 'bad credentials',
      match: { action: 'token.refuse', outcome: 'denied', reason: 'bad_credentials' },
    });
  return out;
}

/** The expectations no audit row satisfies. */
export function missingAuditEvents(
  rows: readonly AuditRowLike[],
  expected: readonly AuditExpectation[],
): AuditExpectation[] {
  return expected.filter(
    (e) => !rows.some((r) => Object.entries(e.match).every(([k, v]) => r[k as keyof AuditRowLike] === v)),
  );
}

/** The admin API answers an array, or an object holding one under a usual name. */
export function auditRowsFrom(body: string): AuditRowLike[] | null {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    return null;
  }
  if (Array.isArray(json)) return json as AuditRowLike[];
  const obj = (json ?? {}) as Record<string, unknown>;
  for (const key of ['events', 'rows', 'items', 'data', 'results']) {
    if (Array.isArray(obj[key])) return obj[key] as AuditRowLike[];
  }
  return null;
}

const AUDIT_WAIT_MS = 15_000;

/**
 * Reads `GET <admin-url>/admin/audit?member=…&since=…` until every expected event is there:
 * the audit writer batches, so the newest events land a moment after the responses.
 */
export async function checkAudit(
  s: VerifySession,
  results: ReadonlyMap<string, RowStatus>,
  sleep: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms)),
): Promise<RowResult> {
  const { adminUrl, adminToken, username } = s.options;
  if (!adminUrl || !adminToken)
    return skip(
      AUDIT_ROW,
      'no admin API given (--admin-url and --admin-token, or VERIFY_OCI_ADMIN_URL and VERIFY_OCI_ADMIN_TOKEN)',
    );
  const expected = auditExpectations(s, results);
  if (expected.length === 0) return skip(AUDIT_ROW, 'no earlier row passed, so no audit event to look for');
  const url = new URL('/admin/audit', adminUrl);
  url.searchParams.set('member', username);
  url.searchParams.set('since', s.state.startedAt.toISOString());
  url.searchParams.set('limit', '1000');
  const deadline = Date.now() + AUDIT_WAIT_MS;
  for (;;) {
    const reply = await s.http.text(url, {
      headers: { authorization: `Bearer ${adminToken}`, accept: 'application/json' },
    });
    if (reply.status !== 200)
      return fail(
        AUDIT_ROW,
        `GET ${url.origin}${url.pathname} → ${describeErrorResponse(reply.status, reply.body)}`,
      );
    const rows = auditRowsFrom(reply.body);
    if (!rows)
      return fail(
        AUDIT_ROW,
        `GET ${url.origin}${url.pathname} → 200 but no list of audit events in the body`,
      );
    const missing = missingAuditEvents(rows, expected);
    if (missing.length === 0)
      return pass(
        AUDIT_ROW,
        `${rows.length} events for "${username}" since the start; found ${expected.map((e) => e.label).join(', ')}`,
      );
    if (Date.now() >= deadline)
      return fail(
        AUDIT_ROW,
        `after ${AUDIT_WAIT_MS / 1000} s, ${rows.length} events for "${username}" but none for: ${missing
          .map(
            (m) =>
              `${m.label} (${Object.entries(m.match)
                .map(([k, v]) => `${k}=${v}`)
                .join(' ')})`,
          )
          .join('; ')}`,
      );
    await sleep(1000);
  }
}
