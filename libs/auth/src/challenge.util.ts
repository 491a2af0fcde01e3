import { formatScope, ScopeGrant } from './scope.util';

export interface BearerChallenge {
  realm: string;
  service: string;
  /** Omitted on the ping (`GET /v2/`), which needs no particular scope. */
  scope?: ScopeGrant | string | null;
  /** RFC 6750: `invalid_token` for a bad or revoked token, `insufficient_scope` for a missing grant. */
  error?: 'invalid_token' | 'insufficient_scope';
}

/**
 * Builds `WWW-Authenticate: Bearer realm="…",service="…",scope="…"`. Values are RFC 7230
 * quoted-strings: backslashes and quotes are escaped and control characters dropped, so a
 * strange repository name or realm can neither break the header nor inject a parameter.
 */
export function buildBearerChallenge(challenge: BearerChallenge): string {
  const params: Array<[string, string]> = [
    ['realm', challenge.realm],
    ['service', challenge.service],
  ];
  if (challenge.scope) {
    params.push([
      'scope',
      typeof challenge.scope === 'string' ? challenge.scope : formatScope(challenge.scope),
    ]);
  }
  if (challenge.error) params.push(['error', challenge.error]);
  return 'Bearer ' + params.map(([k, v]) => `${k}=${quote(v)}`).join(',');
}

/** `Basic realm="<service>"`, what the token endpoint answers when credentials are missing or wrong. */
export function buildBasicChallenge(realm: string): string {
  return `Basic realm=${quote(realm)}`;
}

function quote(value: string): string {
  // eslint-disable-next-line no-control-regex
  const clean = value.replace(/[\u0000-\u001f\u007f]/g, '');
  return `"${clean.replace(/["\\]/g, (c) => `\\${c}`)}"`;
}
