import { esc, time } from '../console/console-html';
import { curlLine, daysUntil, humanSize, shellQuote } from './portal-view';

/**
 * The "What I may download" cards as pure functions of what DownloadsService listed for the
 * member: files with size and sha256, a link to the /downloads/ route, and the lines to copy.
 */

export interface ListedFile {
  name: string;
  size: number;
  sha256: string | null;
  url: string;
}

export interface ListedRelease {
  tag: string;
  assets: ListedFile[];
}

export interface ListedPackageVersion {
  version: string;
  publishedAt: string;
  /** Null for versions past the newest the listing gives with files. */
  files: ListedFile[] | null;
}

/** A resumable download that asks for the key (`--ask-password`), on the /downloads/ route. */
export function wgetLine(username: string, url: string): string {
  return `wget --user ${shellQuote(username)} --ask-password -c ${shellQuote(url)}`;
}

/** The files of a release or a package version, each with its curl and wget lines. */
export function fileList(username: string, files: readonly ListedFile[]): string {
  if (!files.length) return `<p class="empty">No files.</p>`;
  return `<ul class="files">${files
    .map(
      (f) =>
        `<li><a href="${esc(f.url)}">${esc(f.name)}</a> <span class="size">${esc(humanSize(f.size))}</span>${
          f.sha256 ? ` <code class="sha256">sha256:${esc(f.sha256)}</code>` : ''
        }<pre><code>${esc(curlLine(username, f.url))}</code></pre><pre><code>${esc(wgetLine(username, f.url))}</code></pre></li>`,
    )
    .join('')}</ul>`;
}

/** The rules and expiry line of a grant card. */
export function grantLine(rules: readonly string[], expiresAt: Date | null, now: Date): string {
  const days = daysUntil(expiresAt, now);
  const expiry =
    days === null
      ? 'never expires'
      : `expires on ${time(expiresAt)} (in ${days} day${days === 1 ? '' : 's'})`;
  return `<p>Rules: ${rules.map((r) => `<code>${esc(r)}</code>`).join(', ')}; this grant <span class="grant-expiry">${expiry}</span>.</p>`;
}

export function releaseCard(
  repository: string,
  grant: string,
  releases: readonly ListedRelease[],
  username: string,
): string {
  const head = `<article class="card release" data-repository="${esc(repository)}"><h2>${esc(repository)}</h2>${grant}`;
  if (!releases.length)
    return `${head}<p class="empty">No published release matches your grant now.</p></article>`;
  return `${head}${releases.map((r) => `<h3>${esc(r.tag)}</h3>${fileList(username, r.assets)}`).join('')}</article>`;
}

export function packageCard(
  name: string,
  grant: string,
  versions: readonly ListedPackageVersion[],
  username: string,
): string {
  const head = `<article class="card package" data-package="${esc(name)}"><h2>${esc(name)}</h2>${grant}`;
  if (!versions.length)
    return `${head}<p class="empty">No published version matches your grant now.</p></article>`;
  const listed = versions.filter((v) => v.files !== null);
  const older = versions.filter((v) => v.files === null);
  let html = listed
    .map(
      (v) =>
        `<h3>${esc(v.version)}</h3><p class="muted">Published ${time(v.publishedAt || null)}</p>${fileList(username, v.files!)}`,
    )
    .join('');
  if (older.length) {
    html += `<h3>Older versions</h3><p>Also yours: ${older.map((v) => `<code>${esc(v.version)}</code>`).join(', ')}.
Their files download from the same route, <code>/downloads/packages/${esc(name)}/&lt;version&gt;/&lt;file&gt;</code>.</p>`;
  }
  return `${head}${html}</article>`;
}
