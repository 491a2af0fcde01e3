import { describeErrorResponse } from './oci-envelope';
import { HttpUnreachableError } from './verify-http.client';
import { fail, pass, RowResult } from './verify-result';
import { CLIENT_ID, tokenFrom, TokenRequestError, VerifySession } from './verify-session';

export const LOGIN_ROW = 'login';

/**
 * What `docker login` does (scope-less GET token, then `/v2/` with it) plus the OAuth2 POST
 * that containerd uses whenever it has credentials.
 */
export async function checkLogin(s: VerifySession): Promise<RowResult> {
  const realm = s.state.realm;
  if (!realm) return fail(LOGIN_ROW, 'no Bearer realm in the challenge to log in to (see the challenge row)');
  const { username, password } = s.options;
  const service = s.state.service ?? '';
  const user = `user "${username}"`;

  let token: string;
  let expiresIn: unknown;
  try {
    const reply = await s.http.text(
      s.tokenUrl([
        ['account', username],
        ['client_id', CLIENT_ID],
        ['offline_token', 'true'],
        ['service', service],
      ]),
      { headers: { authorization: s.basicAuth() } },
    );
    token = tokenFrom(reply, `GET ${realm.href} (${user})`);
    expiresIn = (JSON.parse(reply.body) as { expires_in?: unknown }).expires_in;
  } catch (e) {
    return fail(LOGIN_ROW, loginFailure(e, realm));
  }

  const ping = await s.http.text(s.v2(), { headers: { authorization: `Bearer ${token}` } });
  if (ping.status !== 200)
    return fail(
      LOGIN_ROW,
      `token issued, but GET /v2/ with it → ${describeErrorResponse(ping.status, ping.body)} (docker login fails here)`,
    );

  try {
    const form = new URLSearchParams({
      grant_type: 'password',
      username,
      password,
      service,
      client_id: CLIENT_ID,
    });
    const reply = await s.http.text(realm, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: form.toString(),
    });
    tokenFrom(reply, `POST ${realm.href} (OAuth2, as containerd sends it)`);
  } catch (e) {
    return fail(LOGIN_ROW, `GET login works, but ${loginFailure(e, realm)}`);
  }

  s.state.loggedIn = true;
  const ttl = typeof expiresIn === 'number' ? ` (expires_in ${expiresIn} s)` : '';
  return pass(LOGIN_ROW, `${user}: token from GET and POST ${realm.href}${ttl}; GET /v2/ with it → 200`);
}

function loginFailure(e: unknown, realm: URL): string {
  if (e instanceof TokenRequestError) {
    const hint = / 401 /.test(e.message)
      ? ': check the username and key, that the key is not revoked or expired and the member is active'
      : '';
    return `${e.message}${hint}`;
  }
  if (e instanceof HttpUnreachableError) return `token endpoint ${realm.href} unreachable: ${e.reason}`;
  return `token endpoint ${realm.href}: ${(e as Error).message}`;
}
