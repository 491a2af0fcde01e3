import type { AuditEvent } from '@gatehouse/audit';
import { esc, time } from './console-html';

/** The client's own request id and a mirror's member tag, under the request id when recorded. */
function correlation(e: Pick<AuditEvent, 'clientRequestId' | 'clientMemberTag'>): string {
  const parts = [
    e.clientRequestId ? `client request <code>${esc(e.clientRequestId)}</code>` : '',
    e.clientMemberTag ? `member tag <code>${esc(e.clientMemberTag)}</code>` : '',
  ].filter((p) => p);
  return parts.map((p) => `<br><small>${p}</small>`).join('');
}

/** Audit rows as a table: every stored text is escaped, the user agent shown as text only. */
export function auditTable(events: readonly AuditEvent[], caption: string): string {
  if (events.length === 0)
    return `<p class="empty">No audit events match. Widen the filters or the time range.</p>`;
  const rows = events
    .map(
      (e) => `<tr class="outcome-${esc(e.outcome)}">
  <td>${time(e.occurredAt)}</td>
  <td>${esc(e.action)}</td>
  <td>${e.username ? `<a href="/console/members/${encodeURIComponent(e.username)}">${esc(e.username)}</a>` : ''}</td>
  <td>${esc(e.repository ?? '')}${e.reference ? `<span class="ref">:${esc(e.reference)}</span>` : ''}</td>
  <td>${esc(e.outcome)}</td>
  <td>${esc(e.reason ?? '')}</td>
  <td>${esc(e.httpStatus ?? '')}</td>
  <td class="ua">${esc(e.userAgent ?? '')}</td>
  <td><code>${esc(e.requestId ?? '')}</code>${correlation(e)}</td>
</tr>`,
    )
    .join('\n');
  return `<table class="audit">
<caption>${esc(caption)}</caption>
<thead><tr><th scope="col">Time</th><th scope="col">Action</th><th scope="col">Member</th><th scope="col">Target</th>
<th scope="col">Outcome</th><th scope="col">Reason</th><th scope="col">Status</th><th scope="col">Client</th>
<th scope="col">Request id</th></tr></thead>
<tbody>
${rows}
</tbody></table>`;
}
