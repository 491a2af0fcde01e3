import { randomBytes } from 'node:crypto';
import { checkEnvelope, describeErrorResponse, EnvelopeExpectation } from './oci-envelope';
import { fail, pass, RowResult, skip } from './verify-result';
import { VerifySession } from './verify-session';

export const TAGS_ROW = 'tags list';
export const PINNED_ROW = 'pinned tag';
export const UNKNOWN_TAG_ROW = 'denial: unknown tag';
export const UNKNOWN_REPOSITORY_ROW = 'denial: unknown repository';
export const BAD_CREDENTIALS_ROW = 'denial: bad credentials';
export const RATE_LIMIT_ROW = 'rate limit';
const NEEDS_LOGIN = 'needs a login (see the login row)';
const NEEDS_REALM = 'needs the realm (see the challenge row)';

/** A manifest GET with a pull token for `repository`, judged against the expected refusal. */
async function expectManifestRefusal(
  s: VerifySession,
  row: string,
  repository: string,
  reference: string,
  expected: EnvelopeExpectation,
): Promise<RowResult> {
  if (!s.state.loggedIn) return skip(row, NEEDS_LOGIN);
  const token = await s.token([`repository:${repository}:pull`]);
  const path = `${repository}/manifests/${reference}`;
  const reply = await s.http.text(s.v2(path), s.manifestRequest(token));
  const verdict = checkEnvelope(reply.status, reply.body, expected);
  return verdict.ok
    ? pass(row, `GET /v2/${path} → ${verdict.text}`)
    : fail(row, `GET /v2/${path}: ${verdict.text}`);
}

/** A tag outside the entitlement looks exactly like a tag that does not exist. */
export function checkPinnedTag(s: VerifySession): Promise<RowResult> {
  return expectManifestRefusal(s, PINNED_ROW, s.options.repository, s.options.unentitledTag, {
    status: 404,
    code: 'MANIFEST_UNKNOWN',
  });
}

export function checkUnknownTag(s: VerifySession): Promise<RowResult> {
  return expectManifestRefusal(s, UNKNOWN_TAG_ROW, s.options.repository, s.options.missingTag, {
    status: 404,
    code: 'MANIFEST_UNKNOWN',
  });
}

export function checkUnknownRepository(s: VerifySession): Promise<RowResult> {
  return expectManifestRefusal(s, UNKNOWN_REPOSITORY_ROW, s.options.unknownRepository, s.options.tag, {
    status: 404,
    code: 'NAME_UNKNOWN',
  });
}

/** `tags/list` shows the pinned tag and hides the unentitled one. */
export async function checkTagsList(s: VerifySession): Promise<RowResult> {
  if (!s.state.loggedIn) return skip(TAGS_ROW, NEEDS_LOGIN);
  const { repository, tag, unentitledTag } = s.options;
  const token = await s.token([`repository:${repository}:pull`]);
  const path = `${repository}/tags/list`;
  const reply = await s.http.text(s.v2(path), { headers: { authorization: `Bearer ${token}` } });
  if (reply.status !== 200)
    return fail(TAGS_ROW, `GET /v2/${path} → ${describeErrorResponse(reply.status, reply.body)}`);
  let tags: unknown;
  try {
    tags = (JSON.parse(reply.body) as { tags?: unknown }).tags;
  } catch {
    return fail(TAGS_ROW, `GET /v2/${path} → 200 but the body is not JSON`);
  }
  if (!Array.isArray(tags)) return fail(TAGS_ROW, `GET /v2/${path} → 200 without a tags array`);
  const shown =
    tags.length > 6 ? `[${tags.slice(0, 6).join(', ')}, … ${tags.length} in all]` : `[${tags.join(', ')}]`;
  if (!tags.includes(tag))
    return fail(TAGS_ROW, `GET /v2/${path} → ${shown}: the entitled tag ${tag} is missing`);
  if (tags.includes(unentitledTag))
    return fail(TAGS_ROW, `GET /v2/${path} → ${shown}: shows ${unentitledTag}, which is not entitled`);
  return pass(TAGS_ROW, `GET /v2/${path} → ${shown}: has ${tag}, not ${unentitledTag}`);
}

function wrongPassword(password: string): string {
  const candidate = 'gatehouse-verify-oci-wrong-key';
  return candidate === password ? `${candidate}-2` : candidate;
}

/** The member's username with a wrong key: what a typo in `docker login` gets. */
export async function checkBadCredentials(s: VerifySession): Promise<RowResult> {
  if (!s.state.realm) return skip(BAD_CREDENTIALS_ROW, NEEDS_REALM);
  const { username, password } = s.options;
  const url = s.tokenUrl([
    ['account', username],
    ['service', s.state.service ?? ''],
  ]);
  const reply = await s.http.text(url, {
    headers: { authorization: s.basicAuth(username, wrongPassword(password)) },
  });
  const verdict = checkEnvelope(reply.status, reply.body, { status: 401, code: 'UNAUTHORIZED' });
  const what = `GET ${s.state.realm.href} as "${username}" with a wrong key`;
  return verdict.ok
    ? pass(BAD_CREDENTIALS_ROW, `${what} → ${verdict.text}`)
    : fail(BAD_CREDENTIALS_ROW, `${what}: ${verdict.text}`);
}

/**
 * Bad logins for a throw-away username until the gateway answers 429. The member's own username
 * is never used, so the burst cannot lock the member out; it does count against this client IP's
 * failed-login budget for the window.
 */
export async function checkRateLimit(s: VerifySession): Promise<RowResult> {
  const max = s.options.rateLimitMaxRequests;
  if (!s.options.checkRateLimit)
    return skip(RATE_LIMIT_ROW, `not asked: --check-rate-limit sends up to ${max} bad logins from this IP`);
  if (!s.state.realm) return skip(RATE_LIMIT_ROW, NEEDS_REALM);
  const username = `gatehouse-verify-oci-${randomBytes(4).toString('hex')}`;
  const url = s.tokenUrl([
    ['account', username],
    ['service', s.state.service ?? ''],
  ]);
  const auth = s.basicAuth(username, wrongPassword(s.options.password));
  const statuses = new Map<number, number>();
  for (let i = 1; i <= max; i++) {
    const reply = await s.http.text(url, { headers: { authorization: auth } });
    statuses.set(reply.status, (statuses.get(reply.status) ?? 0) + 1);
    if (reply.status === 429) {
      const verdict = checkEnvelope(reply.status, reply.body, { status: 429, code: 'TOOMANYREQUESTS' });
      const retryAfter = reply.headers.get('retry-after');
      const validRetry =
        retryAfter !== null && (/^\d+$/.test(retryAfter) || !Number.isNaN(Date.parse(retryAfter)));
      const what = `bad login ${i} of ${max} (user "${username}")`;
      if (!verdict.ok) return fail(RATE_LIMIT_ROW, `${what}: ${verdict.text}`);
      if (!validRetry)
        return fail(
          RATE_LIMIT_ROW,
          `${what} → ${verdict.text} but Retry-After is ${retryAfter ?? 'missing'}`,
        );
      return pass(RATE_LIMIT_ROW, `${what} → ${verdict.text}, Retry-After: ${retryAfter}`);
    }
    if (reply.status !== 401)
      return fail(
        RATE_LIMIT_ROW,
        `bad login ${i} → ${describeErrorResponse(reply.status, reply.body)}, expected 401 or 429`,
      );
  }
  const seen = [...statuses].map(([status, n]) => `${n}× ${status}`).join(', ');
  return fail(RATE_LIMIT_ROW, `no 429 after ${max} requests (${seen}): no login rate limit answered`);
}
