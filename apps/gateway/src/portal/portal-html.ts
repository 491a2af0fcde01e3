import { esc } from '../console/console-html';
import type { PortalPrincipal } from './portal.guard';

/** The portal's page frame: the console's stylesheet and script, nothing inline, no staff navigation. */
export function portalLayout(title: string, body: string, who: PortalPrincipal | null): string {
  const nav = who
    ? `<nav aria-label="Portal"><ul><li><a href="/portal/overview">Your access</a></li>
        <li><a href="/portal/downloads">What I may download</a></li>
        <li><a href="/portal/activity">My activity</a></li></ul><form method="post" action="/portal/logout" class="signout">
        <input type="hidden" name="_csrf" value="${esc(who.session.csrfToken)}">
        <span>${esc(who.member.username)}</span>
        <button type="submit">Sign out</button>
      </form></nav>`
    : '';
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)} · Gatehouse portal</title>
<link rel="stylesheet" href="/console/assets/console.css">
<script src="/console/assets/console.js" defer></script>
</head>
<body>
<header><a class="brand" href="/portal/">Gatehouse portal</a>${nav}</header>
<main id="main">
<h1>${esc(title)}</h1>
${body}
</main>
</body>
</html>`;
}
