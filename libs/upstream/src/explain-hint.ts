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
