import { parseWwwAuthenticate } from '@gatehouse/upstream';
import { parseEnvelope } from './oci-envelope';
import { HttpUnreachableError } from './verify-http.client';
import { fail, pass, RowResult, skip, warn } from './verify-result';
import { VerifySession } from './verify-session';

export const CHALLENGE_ROW = 'challenge';
export const REALM_ROW = 'realm';

export type ChallengeVerdict =
  | { ok: true; realm: URL; service: string; evidence: string }
  | { ok: false; evidence: string; realm?: URL; service?: string };

/** Judges an anonymous `GET /v2/`: 401, the API version header, and a Bearer challenge with realm and service. */
export function evaluateChallenge(
  status: number,
  headers: { get(name: string): string | null },
): ChallengeVerdict {
  const header = headers.get('www-authenticate');
  const bearer = parseWwwAuthenticate(header).find((c) => c.scheme === 'bearer');
  const realmText = bearer?.params.realm;
  const service = bearer?.params.service;
  let realm: URL | undefined;
  try {
    realm = realmText ? new URL(realmText) : undefined;
  } catch {
    realm = undefined;
  }
  if (realm && realm.protocol !== 'http:' && realm.protocol !== 'https:') realm = undefined;
  const seen = `WWW-Authenticate: ${header ?? '(none)'}`;
  if (status !== 401) {
    const open = status === 200 ? ' (anonymous pulls are open)' : '';
    return { ok: false, evidence: `GET /v2/ without credentials → ${status}${open}, expected 401; ${seen}` };
  }
  const version = headers.get('docker-distribution-api-version');
  if (version !== 'registry/2.0')
    return {
      ok: false,
      evidence: `GET /v2/ → 401 without Docker-Distribution-API-Version: registry/2.0 (got ${version ?? 'none'}); docker login needs it`,
    };
  if (!bearer) return { ok: false, evidence: `GET /v2/ → 401 without a Bearer challenge; ${seen}` };
  if (!realmText) return { ok: false, evidence: `Bearer challenge without realm; ${seen}` };
  if (!realm) return { ok: false, evidence: `realm "${realmText}" is not an http(s) URL` };
  if (!service) return { ok: false, realm, evidence: `Bearer challenge without service; ${seen}` };
  return {
    ok: true,
    realm,
    service,
    evidence: `GET /v2/ → 401 Bearer realm="${realm.href}",service="${service}"`,
  };
}

export async function checkChallenge(s: VerifySession): Promise<RowResult> {
  const reply = await s.http.text(s.v2());
  const verdict = evaluateChallenge(reply.status, reply.headers);
  s.state.realm = verdict.realm;
  s.state.service = verdict.service;
  return verdict.ok ? pass(CHALLENGE_ROW, verdict.evidence) : fail(CHALLENGE_ROW, verdict.evidence);
}

/**
 * The realm must answer from where the verifier runs (a client's point of view) and be a token
 * endpoint: an anonymous request gets 401 with a Basic challenge or an OCI envelope, or a token.
 */
export async function checkRealm(s: VerifySession): Promise<RowResult> {
  const realm = s.state.realm;
  if (!realm) return skip(REALM_ROW, 'no realm to check (see the challenge row)');
  const url = s.tokenUrl([['service', s.state.service ?? '']]);
  let reply;
  try {
    reply = await s.http.text(url);
  } catch (e) {
    const reason = e instanceof HttpUnreachableError ? e.reason : (e as Error).message;
    return fail(REALM_ROW, unreachableRealm(realm, reason));
  }
  const basic = parseWwwAuthenticate(reply.headers.get('www-authenticate')).some((c) => c.scheme === 'basic');
  const envelope = parseEnvelope(reply.body);
  const isTokenEndpoint =
    (reply.status === 401 && (basic || envelope?.[0]?.code === 'UNAUTHORIZED')) ||
    (reply.status === 200 && /"(access_)?token"\s*:/.test(reply.body));
  if (!isTokenEndpoint)
    return fail(
      REALM_ROW,
      `realm ${realm.href} answered ${reply.status} to an anonymous token request; a token endpoint answers 401 with a Basic challenge or a token`,
    );
  const answered = `realm ${realm.href} answers as a token endpoint (${reply.status} anonymous)`;
  if (realm.host !== s.options.url.host)
    return warn(
      REALM_ROW,
      `${answered}, but its host ${realm.host} differs from the URL's ${s.options.url.host}: every client must reach ${realm.host}`,
    );
  if (s.options.url.protocol === 'https:' && realm.protocol === 'http:')
    return warn(
      REALM_ROW,
      `${answered}, but over http:// while the registry is https://: credentials travel in clear text`,
    );
  return pass(REALM_ROW, answered);
}

/**
 * Why a realm could not be reached, in words: the TLS failures of an https realm in front of a
 * plain-http gateway (OpenSSL's "wrong version number") or an untrusted certificate are the
 * common ones, and the raw OpenSSL text does not say what to change.
 */
export function unreachableRealm(realm: URL, reason: string): string {
  const plain = `http://${realm.host}${realm.pathname}`;
  if (
    realm.protocol === 'https:' &&
    /wrong version number|WRONG_VERSION_NUMBER|packet length too long|EPROTO/i.test(reason)
  )
    return `realm ${realm.href} is https, but the server at ${realm.host} answers plain HTTP (no TLS): clients fail with "server gave HTTP response to HTTPS client". Fix: put a TLS proxy in front, or for a local check set OCI_REGISTRY_REALM=${plain} on the gateway`;
  if (/certificate|CERT_|SELF_SIGNED/i.test(reason))
    return `realm ${realm.href} presents a TLS certificate this machine does not trust (${reason.split('\n')[0].slice(0, 120)}): clients will refuse it too. Fix: use a certificate from a trusted CA, or trust its CA on every client`;
  return `realm ${realm.href} is not reachable from here: ${reason}`;
}
