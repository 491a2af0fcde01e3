/**
 * The grammar of the download routes: one pure parser from the request path to what is asked,
 * so the routes are unambiguous whatever a repository or package is called and a release tag or
 * package version may hold every character Forgejo allows.
 *
 * | path (under `/downloads/`)                          | asks                               |
 * |-----------------------------------------------------|------------------------------------|
 * | `releases/<owner>/<repo>`                           | the entitled releases (JSON)       |
 * | `releases/<owner>/<repo>/<tag…>/<filename>`         | a release asset; the tag may hold `/` |
 * | `packages/<owner>/<name>`                           | the entitled versions (JSON)       |
 * | `packages/<owner>/<name>/<version>`                 | a package version's files (JSON)   |
 * | `packages/<owner>/<name>/<version>/<filename>`      | a generic package file             |
 *
 * The kind comes first, so a repository called `packages` or `releases` is never mistaken for a
 * route word. Each segment is percent-decoded on its own (`+` stays `+`; `%2F` inside the tag is
 * a `/` of the tag). The contract's shapes (`<owner>/<repo>/releases[/<tag…>/<filename>]`,
 * `<owner>/packages/<name>/<version>/<filename>`) are served too, as the same routes; where they
 * are ambiguous (`<owner>/packages/releases/…`: a package called `releases`, or releases of a
 * repository called `packages`) the package reading wins, as it always has, and the kind-first
 * path reaches the other. A package version's listing has the kind-first shape only.
 */
export type DownloadRoute =
  | { kind: 'release-list'; owner: string; repo: string }
  | { kind: 'release-asset'; owner: string; repo: string; tag: string; filename: string }
  | { kind: 'package-list'; owner: string; name: string }
  | { kind: 'package-version'; owner: string; name: string; version: string }
  | { kind: 'package-file'; owner: string; name: string; version: string; filename: string };

export type DownloadPath = { route: DownloadRoute } | { unknown: 'no_route' | 'bad_encoding' };

/** Longest release tag or package version served (Forgejo's columns are 255 characters). */
export const MAX_DOWNLOAD_VERSION_BYTES = 255;

/** A C0 control character or DEL. */
const CONTROL = {
  test: (s: string) => [...s].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f),
};

/**
 * A release tag as git and Forgejo accept it (git check-ref-format for `refs/tags/<tag>`): no
 * control character, space or any of `~ ^ : ? * [ \`, no `..` or `@{`, not `@`, no empty, leading
 * or trailing `/`, no component starting with `.` or ending with `.lock`, not ending with `.`;
 * and, as Forgejo's ref-name check, not starting with `-` (git would read it as an option).
 * `v1.4.0+build7`, `release/2026-01` and `v1.0.0-ß` are tags.
 */
export function isValidReleaseTag(tag: string): boolean {
  if (tag.length === 0 || Buffer.byteLength(tag) > MAX_DOWNLOAD_VERSION_BYTES) return false;
  if (CONTROL.test(tag) || /[ ~^:?*[\\]/.test(tag)) return false;
  if (tag.includes('..') || tag.includes('@{') || tag === '@' || tag.endsWith('.')) return false;
  if (tag.startsWith('-')) return false;
  return tag.split('/').every((c) => c.length > 0 && !c.startsWith('.') && !c.endsWith('.lock'));
}

/**
 * A generic package version as Forgejo accepts it: one path segment (no `/`), no leading or
 * trailing white space, no control character. `1.4.0+build7` and `2026.01.07-r1` are versions.
 */
export function isValidPackageVersion(version: string): boolean {
  return (
    version.length > 0 &&
    Buffer.byteLength(version) <= MAX_DOWNLOAD_VERSION_BYTES &&
    version === version.trim() &&
    !version.includes('/') &&
    !CONTROL.test(version)
  );
}

/** Parses `path` (the request URL from `/downloads/` on, query allowed and ignored). */
export function parseDownloadPath(path: string): DownloadPath {
  const bare = path.split('?', 1)[0];
  if (!bare.startsWith('/downloads/')) return { unknown: 'no_route' };
  const raw = bare.slice('/downloads/'.length).split('/');
  if (raw.some((s) => s === '')) return { unknown: 'no_route' };
  const segs: string[] = [];
  for (const s of raw) {
    try {
      segs.push(decodeURIComponent(s));
    } catch {
      return { unknown: 'bad_encoding' };
    }
  }
  const [first, second, third] = segs;
  if (first === 'releases') {
    if (segs.length === 3) return { route: { kind: 'release-list', owner: second, repo: third } };
    if (segs.length < 5) return { unknown: 'no_route' };
    const tag = segs.slice(3, -1).join('/');
    const filename = segs[segs.length - 1];
    return { route: { kind: 'release-asset', owner: second, repo: third, tag, filename } };
  }
  if (first === 'packages') {
    if (segs.length === 3) return { route: { kind: 'package-list', owner: second, name: third } };
    if (segs.length === 4)
      return { route: { kind: 'package-version', owner: second, name: third, version: segs[3] } };
    if (segs.length !== 5) return { unknown: 'no_route' };
    return {
      route: { kind: 'package-file', owner: second, name: third, version: segs[3], filename: segs[4] },
    };
  }
  return ownerFirst(segs);
}

/** The path of a route, each part percent-encoded (a tag's own `/` stays a separator). */
export function downloadPathOf(route: DownloadRoute): string {
  const e = encodeURIComponent;
  switch (route.kind) {
    case 'release-list':
      return `/downloads/releases/${e(route.owner)}/${e(route.repo)}`;
    case 'release-asset':
      return `/downloads/releases/${e(route.owner)}/${e(route.repo)}/${route.tag
        .split('/')
        .map(e)
        .join('/')}/${e(route.filename)}`;
    case 'package-list':
      return `/downloads/packages/${e(route.owner)}/${e(route.name)}`;
    case 'package-version':
      return `/downloads/packages/${e(route.owner)}/${e(route.name)}/${e(route.version)}`;
    case 'package-file':
      return `/downloads/packages/${e(route.owner)}/${e(route.name)}/${e(route.version)}/${e(route.filename)}`;
  }
}

/** The contract's owner-first shapes, on decoded segments. */
function ownerFirst(segs: string[]): DownloadPath {
  const [owner, second, third] = segs;
  if (segs.length === 3 && third === 'releases')
    return { route: { kind: 'release-list', owner, repo: second } };
  // `<owner>/packages/releases/…` is a package file (the package reading has always won).
  if (segs.length === 5 && second === 'packages')
    return { route: { kind: 'package-file', owner, name: third, version: segs[3], filename: segs[4] } };
  if (segs.length >= 5 && third === 'releases') {
    const tag = segs.slice(3, -1).join('/');
    return { route: { kind: 'release-asset', owner, repo: second, tag, filename: segs[segs.length - 1] } };
  }
  return { unknown: 'no_route' };
}
