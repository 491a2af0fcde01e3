/**
 * The `gatehouse explain <member> <target>` an upstream Gatehouse's operator runs for the request a
 * refusal came from: `releases:acme/tool@v1.0.0`, `acme/app:v1.2.0`, with `<tag>` where the request
 * names none (a listing, a digest) and `<image>:<tag>` when it names no target at all.
 */
export function explainHint(member: string, request: string | undefined): string {
  return `gatehouse explain ${member} ${explainTarget(request)}`;
}

function explainTarget(request: string | undefined): string {
  const path = (request ?? '').replace(/^[A-Z]+ /, '').split('?')[0];
  const part = (s: string | undefined) => {
    if (!s) return '<tag>';
    try {
      return decodeURIComponent(s);
    } catch {
      return s;
    }
  };
  const download = /^\/downloads\/(releases|packages)\/([^/]+)\/([^/]+)(?:\/([^/]+))?/.exec(path);
  if (download) {
    const [, kind, owner, name, ref] = download;
    return `${kind}:${part(owner)}/${part(name)}@${part(ref)}`;
  }
  const image = /^\/v2\/(.+?)\/(manifests|blobs|tags|referrers)\/([^/]*)/.exec(path);
  if (image) {
    const [, name, what, ref] = image;
    return `${name}:${what === 'manifests' && ref && !ref.includes(':') ? part(ref) : '<tag>'}`;
  }
  return '<image>:<tag>';
}

/** Who this gateway is on its upstream Gatehouse (FORGEJO_API_USERNAME), or the variable to set. */
export function upstreamMember(username: string): string {
  return username || 'FORGEJO_API_USERNAME';
}

/** The operator line when the upstream Gatehouse refuses this gateway's access key. */
export function refusedKeyMessage(
  who: string,
  request: string | undefined,
  status: number | undefined,
): string {
  const on = request ? ` on ${request}` : '';
  const code = status !== undefined ? ` (${status})` : '';
  return (
    `The upstream Gatehouse refused this gateway's access key${on}${code}: it is revoked, expired or mistyped. ` +
    `Fix: ask the upstream operator for a new access key for ${who} (\`${explainHint(who, request)}\` there ` +
    'shows its keys and the verdict), set FORGEJO_API_TOKEN to it and restart.'
  );
}
