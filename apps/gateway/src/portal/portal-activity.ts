/** The member's own audit rows as the member may read them: what they did, never what exists. */

export interface ActivityRow {
  occurredAt: Date;
  action: string;
  repository: string | null;
  reference: string | null;
  digest: string | null;
  outcome: string;
  reason: string | null;
  httpStatus: number | null;
}

export interface MemberActivity {
  at: Date;
  what: string;
  target: string;
  result: string;
}

const ACTIONS: Array<[RegExp, string]> = [
  [/^token\./, 'sign-in (token)'],
  [/^portal\.signin$/, 'sign-in (portal)'],
  [/^(registry|download)\.auth\./, 'sign-in'],
  [/^manifest\./, 'pull (manifest)'],
  [/^blob\./, 'pull (layer)'],
  [/^tags\./, 'list tags'],
  [/^catalog\./, 'list repositories'],
  [/^referrers\./, 'list signatures'],
  [/^download\.list/, 'list releases'],
  [/^download/, 'download'],
];

/** Actions a member made themself (staff actions about them stay with staff). */
export function isMemberAction(action: string): boolean {
  return ACTIONS.some(([re]) => re.test(action));
}

/**
 * The reason a member may see. A refused unknown thing and a refused unentitled one read the
 * same ("not found, or not granted to you"): the audit's reason codes stay with staff.
 */
export function memberSafeResult(row: Pick<ActivityRow, 'outcome' | 'reason' | 'httpStatus'>): string {
  if (row.outcome === 'allowed') return 'served';
  if (row.httpStatus === 429 || row.reason === 'rate_limited') return 'refused: too many requests, slow down';
  if (row.outcome === 'error' || (row.httpStatus ?? 0) >= 500)
    return 'failed: the gateway could not serve this, retry later';
  if (row.httpStatus === 401) return 'refused: sign-in failed';
  return 'refused: not found, or not granted to you';
}

export function memberActivity(rows: readonly ActivityRow[]): MemberActivity[] {
  return rows
    .filter((r) => isMemberAction(r.action))
    .map((r) => ({
      at: r.occurredAt,
      what:
        r.action === 'download.list' && r.repository?.startsWith('packages:')
          ? 'list package versions'
          : ACTIONS.find(([re]) => re.test(r.action))![1],
      // A refusal shows what was asked, never a digest the gateway may have resolved.
      target:
        [r.repository, r.reference].filter(Boolean).join(' ') +
        (r.outcome === 'allowed' && r.digest ? ` (${r.digest.slice(0, 19)}…)` : ''),
      result: memberSafeResult(r),
    }));
}
