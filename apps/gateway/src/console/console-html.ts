import type { StaffSession } from './console-session.store';

/** Text into HTML text or a quoted attribute: the five characters that could end either. */
export function esc(value: unknown): string {
  return String(value ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** A query string from the given values, empty ones left out. */
export function query(values: Record<string, string | undefined | null>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(values)) if (v) q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : '';
}

/** A time the client script rewrites into the viewer's zone; UTC stays in the title. */
export function time(at: Date | string | null | undefined): string {
  if (!at) return '<span class="muted">never</span>';
  const iso = (at instanceof Date ? at : new Date(at)).toISOString();
  return `<time datetime="${esc(iso)}" title="${esc(iso)}">${esc(iso.replace('T', ' ').slice(0, 19))} UTC</time>`;
}

export function csrfField(session: StaffSession): string {
  return `<input type="hidden" name="_csrf" value="${esc(session.csrfToken)}">`;
}

const NAV: Array<[string, string]> = [
  ['/console/explain', 'Explain'],
  ['/console/members', 'Members'],
  ['/console/audit', 'Audit'],
  ['/console/analytics', 'Analytics'],
  ['/console/webhooks', 'Webhooks'],
  ['/console/health', 'Health'],
];

/** The chart library's files, for pages that draw charts (served from /console/assets/). */
export const CHART_ASSETS =
  '<link rel="stylesheet" href="/console/assets/uPlot.min.css">\n<script src="/console/assets/uPlot.iife.min.js" defer></script>';

/** The page frame: one stylesheet and one script, both from /console/assets/, nothing inline. */
export function layout(
  title: string,
  body: string,
  session: StaffSession | null,
  current = '',
  head = '',
): string {
  const nav = session
    ? `<nav aria-label="Console"><ul>${NAV.map(
        ([href, label]) =>
          `<li><a href="${href}"${href === current ? ' aria-current="page"' : ''}>${label}</a></li>`,
      ).join('')}</ul>
      <form method="post" action="/console/logout" class="signout">
        <input type="hidden" name="_csrf" value="${esc(session.csrfToken)}">
        <span>${esc(session.name)} <span class="role">(${esc(session.role)})</span></span>
        <button type="submit">Sign out</button>
      </form></nav>`
    : '';
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)} · Gatehouse console</title>
<link rel="stylesheet" href="/console/assets/console.css">
${head}
<script src="/console/assets/console.js" defer></script>
</head>
<body>
<header><a class="brand" href="/console/explain">Gatehouse console</a>${nav}</header>
<main id="main">
<h1>${esc(title)}</h1>
${body}
</main>
</body>
</html>`;
}

export function errorBox(message: string): string {
  return `<p class="error" role="alert">${esc(message)}</p>`;
}
