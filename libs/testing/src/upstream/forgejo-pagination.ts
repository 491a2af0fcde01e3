/**
 * Forgejo's pagination of tags/list and _catalog, including its quirks (see the Forgejo
 * registry reference, section 4). Pure functions so they can be unit tested.
 */

/** Go's url.Values.Encode: keys sorted, values query-escaped (space as '+'). */
export function encodeQuery(params: Record<string, string>): string {
  return Object.keys(params)
    .sort()
    .map((k) => `${encodeURIComponent(k)}=${encodeURIComponent(params[k]).replace(/%20/g, '+')}`)
    .join('&');
}

export function nextLink(path: string, params: Record<string, string>): string {
  return `<${path}?${encodeQuery(params)}>; rel="next"`;
}

export interface Page<T> {
  items: T[];
  link?: string;
}

/** `n` as sent by the client: undefined when absent or not a number. */
export function parseN(raw: string | null | undefined): number | undefined {
  if (raw === null || raw === undefined || raw === '') return undefined;
  const n = Number.parseInt(raw, 10);
  return Number.isNaN(n) ? undefined : n;
}

/**
 * Tags are lowercased and sorted; `n` absent or negative means no limit, `0` an empty page.
 * The quirk: a `Link` is sent whenever the page is non-empty, even when it is the last one, so a
 * client following it always makes one extra request that gets `[]` and no Link.
 */
export function paginateTags(
  allTags: readonly string[],
  query: { n?: number; last?: string },
  linkPath: string,
): Page<string> {
  let tags = [...new Set(allTags.map((t) => t.toLowerCase()))].sort();
  if (query.last !== undefined && query.last !== '') {
    const last = query.last.toLowerCase();
    tags = tags.filter((t) => t > last);
  }
  if (query.n !== undefined && query.n >= 0) tags = tags.slice(0, query.n);
  if (tags.length === 0) return { items: tags };
  const params: Record<string, string> = { last: tags[tags.length - 1] };
  if (query.n !== undefined && query.n > 0) params.n = String(query.n);
  return { items: tags, link: nextLink(linkPath, params) };
}

/** `n` absent, ≤0 or >100 becomes 100; a Link only when the page is full. */
export function paginateCatalog(
  allRepositories: readonly string[],
  query: { n?: number; last?: string },
): Page<string> {
  const n = query.n === undefined || query.n <= 0 || query.n > 100 ? 100 : query.n;
  let repos = [...new Set(allRepositories.map((r) => r.toLowerCase()))].sort();
  if (query.last !== undefined && query.last !== '') {
    const last = query.last.toLowerCase();
    repos = repos.filter((r) => r > last);
  }
  repos = repos.slice(0, n);
  if (repos.length === 0 || repos.length < n) return { items: repos };
  return { items: repos, link: nextLink('/v2/_catalog', { last: repos[repos.length - 1], n: String(n) }) };
}
