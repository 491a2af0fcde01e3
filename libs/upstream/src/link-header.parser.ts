/** RFC 8288 `Link` headers, as registries send them for tags/list and _catalog pagination. */
export interface LinkValue {
  target: string;
  params: Record<string, string>;
}

export function parseLinkHeader(header: string | string[] | undefined | null): LinkValue[] {
  if (!header) return [];
  const text = Array.isArray(header) ? header.join(', ') : header;
  const out: LinkValue[] = [];
  const re = /<([^>]*)>((?:\s*;\s*[^;,=\s]+(?:\s*=\s*(?:"(?:[^"\\]|\\.)*"|[^;,\s]*))?)*)/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(text)) !== null) {
    const params: Record<string, string> = {};
    const pre = /;\s*([^;,=\s]+)(?:\s*=\s*("(?:[^"\\]|\\.)*"|[^;,\s]*))?/g;
    let p: RegExpExecArray | null;
    while ((p = pre.exec(m[2])) !== null) {
      let v = p[2] ?? '';
      if (v.startsWith('"')) v = v.slice(1, -1).replace(/\\(.)/g, '$1');
      params[p[1].toLowerCase()] = v;
    }
    out.push({ target: m[1], params });
  }
  return out;
}

/** The `rel="next"` target resolved against the URL of the page that carried it. */
export function nextLinkUrl(header: string | string[] | undefined | null, pageUrl: string): URL | null {
  const next = parseLinkHeader(header).find((l) => (l.params.rel ?? '').split(/\s+/).includes('next'));
  if (!next) return null;
  try {
    return new URL(next.target, pageUrl);
  } catch {
    return null;
  }
}
