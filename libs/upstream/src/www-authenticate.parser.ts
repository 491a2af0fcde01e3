/**
 * RFC 9110 `WWW-Authenticate` parsing. Registries send one Bearer or Basic challenge, but a
 * proxy in front may add another, quoted values may hold commas (`scope="repository:a:pull,push"`)
 * and Node joins repeated headers with ", ", so the header is tokenised rather than split.
 */
export interface AuthChallenge {
  /** Lower-cased scheme: `bearer`, `basic`, ... */
  scheme: string;
  /** Lower-cased parameter names; values unquoted. */
  params: Record<string, string>;
  /** A token68 value (`Negotiate abc==`), when the challenge carries one instead of parameters. */
  token68?: string;
}

const TOKEN_CHAR = /[!#$%&'*+\-.^_`|~0-9A-Za-z]/;
const TOKEN68_CHAR = /[A-Za-z0-9\-._~+/]/;

export function parseWwwAuthenticate(header: string | string[] | undefined | null): AuthChallenge[] {
  if (header === undefined || header === null) return [];
  const text = Array.isArray(header) ? header.join(', ') : header;
  const challenges: AuthChallenge[] = [];
  let i = 0;
  const n = text.length;

  const skipWs = (): void => {
    while (i < n && (text[i] === ' ' || text[i] === '\t')) i++;
  };
  const skipSeparators = (): void => {
    while (i < n && (text[i] === ' ' || text[i] === '\t' || text[i] === ',')) i++;
  };
  const readToken = (): string => {
    const start = i;
    while (i < n && TOKEN_CHAR.test(text[i])) i++;
    return text.slice(start, i);
  };
  const readBare = (): string => {
    const start = i;
    while (i < n && text[i] !== ',' && text[i] !== ' ' && text[i] !== '\t') i++;
    return text.slice(start, i);
  };
  const readQuoted = (): string => {
    // text[i] === '"'
    i++;
    let out = '';
    while (i < n && text[i] !== '"') {
      if (text[i] === '\\' && i + 1 < n) i++;
      out += text[i++];
    }
    i++; // closing quote (or end of input for an unterminated value)
    return out;
  };

  while (i < n) {
    skipSeparators();
    if (i >= n) break;
    const scheme = readToken();
    if (!scheme) {
      // Garbage we cannot parse: skip one character rather than loop forever.
      i++;
      continue;
    }
    const challenge: AuthChallenge = { scheme: scheme.toLowerCase(), params: {} };
    challenges.push(challenge);
    skipWs();

    // token68 form (`Negotiate abc==`): a run of token68 characters that ends the challenge.
    const save = i;
    while (i < n && TOKEN68_CHAR.test(text[i])) i++;
    while (i < n && text[i] === '=') i++;
    const candidate = text.slice(save, i);
    skipWs();
    if (candidate && (i >= n || text[i] === ',')) {
      challenge.token68 = candidate;
      continue;
    }
    i = save;

    // auth-params: name = (token | quoted-string), separated by commas. A token not followed
    // by '=' starts the next challenge.
    for (;;) {
      skipSeparators();
      if (i >= n) break;
      const start = i;
      const name = readToken();
      if (!name) {
        i++;
        continue;
      }
      skipWs();
      if (text[i] !== '=') {
        // The next challenge's scheme.
        i = start;
        break;
      }
      i++;
      skipWs();
      // Unquoted values are read up to the next comma: servers put bare URLs there although
      // they are not RFC tokens.
      const value = text[i] === '"' ? readQuoted() : readBare();
      challenge.params[name.toLowerCase()] = value;
    }
  }
  return challenges;
}

export interface BearerChallenge {
  realm: string;
  service?: string;
  scope?: string;
  /** RFC 6750 error, e.g. `insufficient_scope` or `invalid_token`. */
  error?: string;
}

export function findBearerChallenge(challenges: AuthChallenge[]): BearerChallenge | null {
  const c = challenges.find((x) => x.scheme === 'bearer' && x.params.realm);
  if (!c) return null;
  const out: BearerChallenge = { realm: c.params.realm };
  if (c.params.service !== undefined) out.service = c.params.service;
  if (c.params.scope !== undefined) out.scope = c.params.scope;
  if (c.params.error !== undefined) out.error = c.params.error;
  return out;
}

export function findBasicChallenge(challenges: AuthChallenge[]): { realm: string } | null {
  const c = challenges.find((x) => x.scheme === 'basic');
  return c ? { realm: c.params.realm ?? '' } : null;
}
