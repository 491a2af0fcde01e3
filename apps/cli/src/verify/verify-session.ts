import { Descriptor, MANIFEST_ACCEPT } from '@gatehouse/oci';
import { describeErrorResponse } from './oci-envelope';
import { HttpReply, VerifyHttpClient } from './verify-http.client';
import { VerifyOciOptions } from './verify-options';

/** What the entitled pull found; the cache-hit and real-client rows build on it. */
export interface PulledImage {
  digest: string;
  mediaType: string;
  /** Child manifest digests (empty for a single-platform manifest). */
  manifests: string[];
  blobs: Descriptor[];
  bytes: number;
}

/** Facts a row learns for the rows after it. */
export interface VerifyState {
  realm?: URL;
  service?: string;
  loggedIn: boolean;
  pull?: PulledImage;
  /** When the run started: the audit row looks at events from then on. */
  startedAt: Date;
}

export const CLIENT_ID = 'gatehouse-verify-oci';

/** A refusal or failure of the token endpoint, worded for the evidence column. */
export class TokenRequestError extends Error {}

/** One run against one stack: the options, the HTTP client and what earlier rows learned. */
export class VerifySession {
  readonly state: VerifyState;

  constructor(
    readonly options: VerifyOciOptions,
    readonly http: VerifyHttpClient,
    now: Date = new Date(),
  ) {
    this.state = { loggedIn: false, startedAt: now };
  }

  /** Secrets that must never appear in the output, in every form they travel in. */
  get secrets(): string[] {
    const { username, password, adminToken } = this.options;
    return [password, basicValue(username, password), adminToken ?? ''].filter(Boolean);
  }

  basicAuth(username = this.options.username, password = this.options.password): string {
    return `Basic ${basicValue(username, password)}`;
  }

  /** `<url>/v2/<path>` */
  v2(path = ''): URL {
    return new URL(`/v2/${path}`, this.options.url);
  }

  /** A realm URL with the Docker token-spec query (`service`, repeated `scope`, ...). */
  tokenUrl(params: Array<[string, string]>): URL {
    const realm = new URL(this.state.realm!);
    for (const [k, v] of params) realm.searchParams.append(k, v);
    return realm;
  }

  /** Docker's GET flow; throws TokenRequestError with the endpoint's answer. */
  async token(
    scopes: string[],
    username = this.options.username,
    password = this.options.password,
  ): Promise<string> {
    if (!this.state.realm) throw new TokenRequestError('no token realm (see the challenge row)');
    const url = this.tokenUrl([
      ['service', this.state.service ?? ''],
      ...scopes.map((s) => ['scope', s] as [string, string]),
      ['client_id', CLIENT_ID],
    ]);
    const reply = await this.http.text(url, {
      headers: { authorization: this.basicAuth(username, password) },
    });
    return tokenFrom(reply, `GET ${this.state.realm.href}`);
  }

  /** GET with a token for `repository:<name>:pull`, asking for every manifest kind. */
  manifestRequest(token: string): { headers: Record<string, string> } {
    return { headers: { authorization: `Bearer ${token}`, accept: MANIFEST_ACCEPT } };
  }
}

export function basicValue(username: string, password: string): string {
  return Buffer.from(`${username}:${password}`).toString('base64');
}

/** The token out of a token-endpoint reply (`token` or `access_token`), or why there is none. */
export function tokenFrom(reply: HttpReply, what: string): string {
  if (reply.status !== 200)
    throw new TokenRequestError(`${what} → ${describeErrorResponse(reply.status, reply.body)}`);
  let json: { token?: unknown; access_token?: unknown };
  try {
    json = JSON.parse(reply.body) as typeof json;
  } catch {
    throw new TokenRequestError(`${what} → 200 but the body is not JSON`);
  }
  const token = typeof json.token === 'string' ? json.token : json.access_token;
  if (typeof token !== 'string' || token === '')
    throw new TokenRequestError(`${what} → 200 without a token or access_token`);
  return token;
}
