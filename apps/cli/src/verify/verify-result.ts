/** PASS and WARN do not fail the run; SKIP says why a row could not run; any FAIL exits non-zero. */
export type RowStatus = 'PASS' | 'WARN' | 'FAIL' | 'SKIP';

export interface RowResult {
  row: string;
  status: RowStatus;
  /** One line an operator can act on: what was sent, what came back. */
  evidence: string;
}

export const pass = (row: string, evidence: string): RowResult => ({ row, status: 'PASS', evidence });
export const warn = (row: string, evidence: string): RowResult => ({ row, status: 'WARN', evidence });
export const fail = (row: string, evidence: string): RowResult => ({ row, status: 'FAIL', evidence });
export const skip = (row: string, evidence: string): RowResult => ({ row, status: 'SKIP', evidence });

export function hasFailure(rows: readonly RowResult[]): boolean {
  return rows.some((r) => r.status === 'FAIL');
}

export function summarize(rows: readonly RowResult[]): string {
  const count = (s: RowStatus) => rows.filter((r) => r.status === s).length;
  const parts = (['PASS', 'WARN', 'FAIL', 'SKIP'] as const)
    .filter((s) => count(s) > 0)
    .map((s) => `${count(s)} ${s}`);
  return `${rows.length} checks: ${parts.join(', ')}`;
}

/**
 * Replaces every secret (and its Basic-auth encoding) in a line of evidence. Evidence quotes
 * response bodies, and a misbehaving server could echo what it was sent.
 */
export function redact(text: string, secrets: readonly string[]): string {
  let out = text.replace(/[\r\n]+/g, ' ');
  for (const secret of secrets) {
    if (!secret) continue;
    out = out.split(secret).join('***');
  }
  return out;
}

/** Short digest for evidence: `sha256:0123456789ab…`. */
export function shortDigest(digest: string): string {
  const i = digest.indexOf(':');
  return i < 0 ? digest : `${digest.slice(0, i + 13)}…`;
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 * 1024 * 1024) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  return `${(n / 1024 / 1024 / 1024).toFixed(2)} GiB`;
}
