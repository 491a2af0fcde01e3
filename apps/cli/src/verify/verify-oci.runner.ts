import { AUDIT_ROW, checkAudit } from './audit.check';
import { CHALLENGE_ROW, checkChallenge, checkRealm, REALM_ROW } from './challenge.check';
import {
  BAD_CREDENTIALS_ROW,
  checkBadCredentials,
  checkPinnedTag,
  checkRateLimit,
  checkTagsList,
  checkUnknownRepository,
  checkUnknownTag,
  PINNED_ROW,
  RATE_LIMIT_ROW,
  TAGS_ROW,
  UNKNOWN_REPOSITORY_ROW,
  UNKNOWN_TAG_ROW,
} from './denial.check';
import { checkLogin, LOGIN_ROW } from './login.check';
import { CACHE_ROW, checkCacheHit, checkEntitledPull, PULL_ROW } from './pull.check';
import { checkRealClient, CLIENT_ROW } from './real-client.check';
import { HttpUnreachableError, VerifyHttpClient } from './verify-http.client';
import { VerifyOciOptions } from './verify-options';
import { fail, redact, RowResult, RowStatus } from './verify-result';
import { VerifySession } from './verify-session';

type Check = (s: VerifySession, results: ReadonlyMap<string, RowStatus>) => Promise<RowResult>;

/**
 * The rows in order. Later rows use what earlier ones learned (realm, token, pulled digests).
 * The real client runs before the rate-limit burst, which may make this IP wait.
 */
export const VERIFY_ROWS: ReadonlyArray<{ row: string; check: Check }> = [
  { row: CHALLENGE_ROW, check: checkChallenge },
  { row: REALM_ROW, check: checkRealm },
  { row: LOGIN_ROW, check: checkLogin },
  { row: PULL_ROW, check: checkEntitledPull },
  { row: TAGS_ROW, check: checkTagsList },
  { row: PINNED_ROW, check: checkPinnedTag },
  { row: CACHE_ROW, check: checkCacheHit },
  { row: UNKNOWN_TAG_ROW, check: checkUnknownTag },
  { row: UNKNOWN_REPOSITORY_ROW, check: checkUnknownRepository },
  { row: BAD_CREDENTIALS_ROW, check: checkBadCredentials },
  { row: CLIENT_ROW, check: (s) => checkRealClient(s) },
  { row: AUDIT_ROW, check: checkAudit },
  { row: RATE_LIMIT_ROW, check: checkRateLimit },
];

export interface VerifyOciReport {
  rows: RowResult[];
  target: string;
}

/**
 * Runs every row against a running stack. A row that throws is a FAIL with the error as its
 * evidence; every line of evidence is scrubbed of the secrets before it leaves.
 */
export async function runVerifyOci(
  options: VerifyOciOptions,
  onRow: (row: RowResult) => void = () => undefined,
): Promise<VerifyOciReport> {
  const http = new VerifyHttpClient(options.timeoutMs);
  const session = new VerifySession(options, http);
  const results = new Map<string, RowStatus>();
  const rows: RowResult[] = [];
  try {
    for (const { row, check } of VERIFY_ROWS) {
      let result: RowResult;
      try {
        result = await check(session, results);
      } catch (e) {
        result = fail(
          row,
          e instanceof HttpUnreachableError ? e.message : `${(e as Error).message ?? String(e)}`,
        );
      }
      result = { ...result, evidence: redact(result.evidence, session.secrets) };
      results.set(row, result.status);
      rows.push(result);
      onRow(result);
    }
  } finally {
    await http.close();
  }
  return { rows, target: options.url.origin };
}
