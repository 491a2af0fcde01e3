import { EVENT_TYPES, WebhookDelivery, WebhookSubscription } from '@gatehouse/events';
import type { StaffSession } from './console-session.store';
import { csrfField, esc, time } from './console-html';

export const webhookHref = (id: string) => `/console/webhooks/${encodeURIComponent(id)}`;

/** What the add form held, shown again beside an error. */
export interface WebhookForm {
  url?: string;
  types?: string;
  member?: string;
  repository?: string;
  description?: string;
}

/** The outcome of a subscription's newest delivery, as a table cell. */
export function lastDeliveryCell(d: WebhookDelivery | undefined): string {
  if (!d) return '<span class="muted">none yet</span>';
  const answer = d.lastStatus ? ` (HTTP ${d.lastStatus})` : d.lastError ? ` (${esc(d.lastError)})` : '';
  const cls = d.status === 'delivered' ? 'allowed' : d.status === 'dead' ? 'denied' : '';
  return `<span class="${cls}">${esc(d.status)}</span>${answer} ${time(d.lastAttemptAt ?? d.createdAt)}`;
}

function filters(s: WebhookSubscription): string {
  const parts = [
    s.memberFilter ? `member <code>${esc(s.memberFilter)}</code>` : '',
    s.repositoryFilter ? `repository <code>${esc(s.repositoryFilter)}</code>` : '',
  ].filter(Boolean);
  return parts.length ? parts.join(', ') : '<span class="muted">all</span>';
}

const enabledCell = (s: WebhookSubscription) =>
  s.enabled
    ? '<span class="allowed">enabled</span>'
    : `<span class="denied">disabled</span>${s.disabledReason ? ` (${esc(s.disabledReason)})` : ''}`;

/** The subscriptions table and, for admins, the add form. */
export function webhookListBody(
  subs: Array<{ sub: WebhookSubscription; last: WebhookDelivery | undefined }>,
  staff: StaffSession,
  form: WebhookForm = {},
  error = '',
): string {
  const rows = subs
    .map(
      ({ sub: s, last }) =>
        `<tr><td><a href="${esc(webhookHref(s.id))}">${esc(s.url)}</a>${s.description ? `<br><span class="muted">${esc(s.description)}</span>` : ''}</td>
<td>${s.eventTypes.map((t) => `<code>${esc(t)}</code>`).join(' ')}</td><td>${filters(s)}</td><td>${enabledCell(s)}</td><td>${lastDeliveryCell(last)}</td></tr>`,
    )
    .join('\n');
  const table = subs.length
    ? `<table><caption>${subs.length} subscription${subs.length === 1 ? '' : 's'}</caption><thead><tr><th scope="col">URL</th><th scope="col">Events</th><th scope="col">Member / repository</th><th scope="col">State</th><th scope="col">Last delivery</th></tr></thead><tbody>${rows}</tbody></table>`
    : `<p class="empty">No webhook subscriptions: events reach no receiver.${staff.role === 'admin' ? ' Add one below.' : ' An admin can add one.'}</p>`;
  const add =
    staff.role === 'admin'
      ? `<form method="post" action="/console/webhooks" class="card"><h2 id="addhook">New subscription</h2>${csrfField(staff)}
${error ? `<p class="error" role="alert">${esc(error)}</p>` : ''}
<div class="row"><label for="url">Receiver URL</label><input id="url" name="url" type="url" required value="${esc(form.url)}" placeholder="https://hooks.example.com/gatehouse"></div>
<div class="row"><label for="types">Event types (comma-separated; empty for all)</label><input id="types" name="types" value="${esc(form.types)}" placeholder="pull.manifest, member.*" aria-describedby="types-help"></div>
<p id="types-help" class="muted">One of ${EVENT_TYPES.map((t) => `<code>${esc(t)}</code>`).join(', ')}, a prefix like <code>member.*</code>, or <code>*</code>.</p>
<div class="row"><label for="member">Only this member (optional)</label><input id="member" name="member" value="${esc(form.member)}"></div>
<div class="row"><label for="repository">Only this repository (optional)</label><input id="repository" name="repository" value="${esc(form.repository)}" placeholder="acme/app"></div>
<div class="row"><label for="description">Description (optional)</label><input id="description" name="description" value="${esc(form.description)}"></div>
<button type="submit">Add subscription</button></form>`
      : '';
  return `${table}${add}`;
}

function deliveryRows(list: WebhookDelivery[], redeliver: string | null, staff: StaffSession): string {
  return list
    .map(
      (d) =>
        `<tr><td><code>${esc(d.eventType)}</code><br><span class="muted">${esc(d.eventId)}</span></td><td>${esc(d.status)}</td><td>${d.attempts}</td>
<td>${d.lastStatus ? `HTTP ${esc(d.lastStatus)}` : ''}${d.lastError ? ` ${esc(d.lastError)}` : ''}</td><td>${time(d.lastAttemptAt)}</td><td>${time(d.createdAt)}</td>${
          redeliver === null
            ? ''
            : `<td>${
                staff.role === 'admin'
                  ? `<form method="post" action="${esc(redeliver)}">${csrfField(staff)}<input type="hidden" name="delivery" value="${esc(d.id)}"><button type="submit">Redeliver</button></form>`
                  : ''
              }</td>`
        }</tr>`,
    )
    .join('\n');
}

const DELIVERY_HEAD = (actions: boolean) =>
  `<thead><tr><th scope="col">Event</th><th scope="col">Status</th><th scope="col">Attempts</th><th scope="col">Last answer or error</th><th scope="col">Last attempt</th><th scope="col">Queued</th>${actions ? '<th scope="col"><span class="sr-only">Actions</span></th>' : ''}</tr></thead>`;

/** One subscription: its settings, admin actions, dead letters (redeliver) and recent deliveries. */
export function webhookShowBody(
  s: WebhookSubscription,
  recent: WebhookDelivery[],
  dead: WebhookDelivery[],
  staff: StaffSession,
): string {
  const href = webhookHref(s.id);
  const admin = staff.role === 'admin';
  const post = (action: string, label: string, cls = '') =>
    `<form method="post" action="${esc(href)}/${action}" class="inline">${csrfField(staff)}<button type="submit"${cls ? ` class="${cls}"` : ''}>${label}</button></form>`;
  const actions = admin
    ? `<section class="card" aria-labelledby="actions"><h2 id="actions">Actions</h2>
${post('test', 'Send a test event')} ${post('rotate-secret', 'Rotate the secret')} ${s.enabled ? '' : post('enable', 'Enable')}
<a class="button danger" href="${esc(href)}/remove">Remove…</a></section>`
    : '';
  const deadSection = dead.length
    ? `<table><caption>${dead.length} dead letter${dead.length === 1 ? '' : 's'}: retried for a day and given up</caption>${DELIVERY_HEAD(true)}<tbody>${deliveryRows(dead, `${href}/redeliver`, staff)}</tbody></table>${
        admin ? post('redeliver', 'Redeliver every dead letter') : ''
      }`
    : '<p class="empty">No dead letters.</p>';
  const recentSection = recent.length
    ? `<table><caption>The newest ${recent.length}</caption>${DELIVERY_HEAD(false)}<tbody>${deliveryRows(recent, null, staff)}</tbody></table>`
    : '<p class="empty">No deliveries yet: events matching the filter appear here once they are sent.</p>';
  return `<dl class="facts"><dt>URL</dt><dd><code>${esc(s.url)}</code></dd><dt>Events</dt><dd>${s.eventTypes.map((t) => `<code>${esc(t)}</code>`).join(' ')}</dd>
<dt>Member / repository</dt><dd>${filters(s)}</dd><dt>State</dt><dd>${enabledCell(s)}</dd>
<dt>Description</dt><dd>${esc(s.description ?? '')}</dd><dt>Created</dt><dd>${time(s.createdAt)} by ${esc(s.createdBy)}</dd></dl>
${actions}
<section aria-labelledby="dead"><h2 id="dead">Dead letters</h2>${deadSection}</section>
<section aria-labelledby="recent"><h2 id="recent">Recent deliveries</h2>${recentSection}</section>`;
}

/** A new or rotated secret, shown this once, with a copy button. */
export function secretBody(s: WebhookSubscription, secret: string, rotated: boolean): string {
  return `<section class="card" aria-labelledby="secret"><h2 id="secret">${rotated ? 'The new signing secret' : 'The signing secret'}</h2>
<p>Shown this once: copy it now into the receiver's configuration (any Standard Webhooks library verifies with it).${
    rotated ? ' The previous secret keeps signing beside it until the next rotation.' : ''
  }</p>
<p><input id="webhook-secret" class="secret" readonly value="${esc(secret)}" aria-label="Webhook signing secret">
<button type="button" class="copy" data-copy="webhook-secret">Copy</button></p>
<p><a href="${esc(webhookHref(s.id))}">Back to the subscription for ${esc(s.url)}</a></p></section>`;
}
