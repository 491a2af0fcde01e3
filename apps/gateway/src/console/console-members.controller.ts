import { Body, Controller, Get, Param, Post, Query, Res, UseFilters, UseGuards } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { EntitlementService, entitlementView } from '@gatehouse/entitlements';
import { AccessKeyService, accessKeyView, MemberService, memberView, parseExpiry } from '@gatehouse/members';
import { Clock } from '@gatehouse/observability';
import { ConsoleAuditRecorder } from './console-audit.recorder';
import { ConsoleErrorsFilter } from './console-errors.filter';
import { AdminOnly, ConsoleGuard, Staff } from './console.guard';
import { csrfField, esc, layout, time } from './console-html';
import { sendHtml } from './console-http';
import type { StaffSession } from './console-session.store';

type Form = Record<string, string | undefined>;
const text = (v: unknown, max = 500) => (typeof v === 'string' ? v.trim().slice(0, max) : '');
const memberHref = (username: string) => `/console/members/${encodeURIComponent(username)}`;

/** Members, their access keys and entitlements: read for support, write for admins. */
@Controller('console/members')
@UseGuards(ConsoleGuard)
@UseFilters(ConsoleErrorsFilter)
export class ConsoleMembersController {
  constructor(
    private readonly members: MemberService,
    private readonly keys: AccessKeyService,
    private readonly entitlements: EntitlementService,
    private readonly recorder: ConsoleAuditRecorder,
    private readonly clock: Clock,
  ) {}

  @Get()
  async list(
    @Res() reply: FastifyReply,
    @Staff() staff: StaffSession,
    @Query('q') q?: string,
  ): Promise<void> {
    const search = text(q, 100).toLowerCase();
    const all = (await this.members.list()).map(memberView);
    const found = search ? all.filter((m) => m.username.toLowerCase().includes(search)) : all;
    const rows = found
      .map(
        (m) =>
          `<tr><td><a href="${esc(memberHref(m.username))}">${esc(m.username)}</a></td><td>${esc(m.status)}</td><td>${esc(m.note ?? '')}</td><td>${time(m.createdAt)}</td></tr>`,
      )
      .join('\n');
    const table = found.length
      ? `<table><caption>${found.length} of ${all.length} members</caption><thead><tr><th scope="col">Username</th><th scope="col">Status</th><th scope="col">Note</th><th scope="col">Created</th></tr></thead><tbody>${rows}</tbody></table>`
      : `<p class="empty">${all.length ? 'No member matches; try part of the username.' : 'No members yet.'}</p>`;
    const create =
      staff.role === 'admin'
        ? `<form method="post" action="/console/members" class="card"><h2>New member</h2>${csrfField(staff)}
<div class="row"><label for="username">Username</label><input id="username" name="username" required></div>
<div class="row"><label for="note">Note</label><input id="note" name="note"></div>
<button type="submit">Create member</button></form>`
        : '';
    const body = `<form method="get" action="/console/members" role="search" class="card">
<label for="q">Search members</label> <input id="q" name="q" type="search" value="${esc(search)}"> <button type="submit">Search</button>
</form>${table}${create}`;
    sendHtml(reply, layout('Members', body, staff, '/console/members'));
  }

  @Post()
  @AdminOnly()
  async create(@Res() reply: FastifyReply, @Staff() staff: StaffSession, @Body() body: Form): Promise<void> {
    const m = await this.members.create(text(body.username, 200), text(body.note) || null);
    this.recorder.record('admin.member.create', staff, 'allowed', {
      memberId: m.id,
      username: m.username,
      httpStatus: 201,
    });
    void reply.redirect(memberHref(m.username), 303);
  }

  @Get(':username')
  async show(@Res() reply: FastifyReply, @Staff() staff: StaffSession, @Param('username') username: string) {
    const m = await this.members.get(username);
    const now = new Date(this.clock.now());
    const [keys, grants] = await Promise.all([
      this.keys.list(m.username),
      this.entitlements.list({ username: m.username }),
    ]);
    const admin = staff.role === 'admin';
    const keyRows = keys
      .map((k) => accessKeyView(k, now))
      .map(
        (
          k,
        ) => `<tr><td><code>${esc(k.prefix)}</code></td><td>${esc(k.name ?? '')}</td><td>${esc(k.status)}</td>
<td>${time(k.lastUsedAt)}</td><td>${time(k.expiresAt)}</td><td>${time(k.createdAt)}</td>
<td>${admin && k.status === 'active' ? `<a class="button danger" href="/console/members/${encodeURIComponent(m.username)}/keys/${esc(k.id)}/revoke">Revoke…</a>` : ''}</td></tr>`,
      )
      .join('\n');
    const grantRows = grants
      .map((e) => entitlementView(e, now))
      .map(
        (
          e,
        ) => `<tr><td>${esc(e.target)}</td><td>${esc(e.kind)}</td><td>${e.tagRules.map((r) => `<code>${esc(r)}</code>`).join(' ')}</td>
<td>${e.live ? 'live' : 'expired'}</td><td>${time(e.expiresAt)}</td>
<td>${
          admin
            ? `<a class="button" href="/console/grant?member=${encodeURIComponent(m.username)}&amp;repository=${encodeURIComponent(e.target)}&amp;tags=${encodeURIComponent(e.tagRules.join(','))}">Edit…</a>
<a class="button danger" href="/console/grant/revoke?member=${encodeURIComponent(m.username)}&amp;repository=${encodeURIComponent(e.target)}">Revoke…</a>`
            : ''
        }</td></tr>`,
      )
      .join('\n');
    const write = admin
      ? `<section class="card" aria-labelledby="newkey"><h2 id="newkey">New access key</h2>
<form method="post" action="${esc(memberHref(m.username))}/keys">${csrfField(staff)}
<div class="row"><label for="keyname">Name</label><input id="keyname" name="name" placeholder="ci"></div>
<div class="row"><label for="expires">Expires</label><input id="expires" name="expires" placeholder="90d or 2027-01-01"></div>
<button type="submit">Create key</button></form></section>
<section class="card" aria-labelledby="newgrant"><h2 id="newgrant">New entitlement</h2>
<form method="get" action="/console/grant"><input type="hidden" name="member" value="${esc(m.username)}">
<div class="row"><label for="repository">Repository, releases: or packages: target</label><input id="repository" name="repository" required placeholder="acme/app"></div>
<div class="row"><label for="tags">Tag rules (comma-separated)</label><input id="tags" name="tags" required placeholder="v1.*, semver:^2"></div>
<button type="submit">Preview</button></form></section>
<form method="post" action="${esc(memberHref(m.username))}/${m.status === 'active' ? 'disable' : 'enable'}">${csrfField(staff)}
<button type="submit" class="${m.status === 'active' ? 'danger' : ''}">${m.status === 'active' ? 'Disable member' : 'Enable member'}</button></form>`
      : '';
    const body = `<p>Status: <strong>${esc(m.status)}</strong>${m.note ? ` · ${esc(m.note)}` : ''} · created ${time(m.createdAt)}
· <a href="/console/audit?member=${encodeURIComponent(m.username)}">audit events</a></p>
<section aria-labelledby="keys"><h2 id="keys">Access keys</h2>${
      keys.length
        ? `<table><thead><tr><th scope="col">Prefix</th><th scope="col">Name</th><th scope="col">Status</th><th scope="col">Last used</th><th scope="col">Expires</th><th scope="col">Created</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead><tbody>${keyRows}</tbody></table>`
        : '<p class="empty">No access keys: the member cannot log in until an admin creates one.</p>'
    }</section>
<section aria-labelledby="grants"><h2 id="grants">Entitlements</h2>${
      grants.length
        ? `<table><thead><tr><th scope="col">Target</th><th scope="col">Kind</th><th scope="col">Rules</th><th scope="col">State</th><th scope="col">Expires</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead><tbody>${grantRows}</tbody></table>`
        : '<p class="empty">No entitlements: the member can pull nothing.</p>'
    }</section>${write}`;
    sendHtml(reply, layout(`Member ${m.username}`, body, staff, '/console/members'));
  }

  @Post(':username/keys')
  @AdminOnly()
  async createKey(
    @Res() reply: FastifyReply,
    @Staff() staff: StaffSession,
    @Param('username') username: string,
    @Body() body: Form,
  ): Promise<void> {
    const now = new Date(this.clock.now());
    const expires = text(body.expires, 100);
    const expiresAt = expires ? parseExpiry(expires, now) : null;
    const { key, accessKey } = await this.keys.create(username, {
      name: text(body.name, 100) || null,
      expiresAt,
    });
    this.recorder.record(
      'admin.key.create',
      staff,
      'allowed',
      { memberId: accessKey.memberId, username: accessKey.member?.username ?? username, httpStatus: 201 },
      { accessKeyId: accessKey.id, accessKeyPrefix: accessKey.prefix, name: accessKey.name, expiresAt },
    );
    const page = `<section class="card" aria-labelledby="secret"><h2 id="secret">The new key’s secret</h2>
<p>Shown this once: copy it now and hand it to the member. It is the password for <code>docker login</code>.</p>
<p><input id="key-secret" class="secret" readonly value="${esc(key)}" aria-label="Access key secret">
<button type="button" class="copy" data-copy="key-secret">Copy</button></p>
<p><a href="${esc(memberHref(username))}">Back to ${esc(username)}</a></p></section>`;
    sendHtml(reply, layout('Access key created', page, staff, '/console/members'), 201);
  }

  @Get(':username/keys/:id/revoke')
  @AdminOnly()
  async confirmRevoke(
    @Res() reply: FastifyReply,
    @Staff() staff: StaffSession,
    @Param('username') username: string,
    @Param('id') id: string,
  ): Promise<void> {
    const m = await this.members.get(username);
    const k = (await this.keys.list(m.username)).find((x) => x.id === id);
    const body = k
      ? `<form method="post" action="${esc(memberHref(m.username))}/keys/${esc(k.id)}/revoke" class="card">${csrfField(staff)}
<p>Revoke key <code>${esc(k.prefix)}</code>${k.name ? ` (${esc(k.name)})` : ''} of ${esc(m.username)}? Logins with it fail at once and issued tokens stop within seconds. This cannot be undone.</p>
<button type="submit" class="danger">Revoke the key</button> <a href="${esc(memberHref(m.username))}">Cancel</a></form>`
      : `<p class="error" role="alert">${esc(m.username)} has no such key.</p>`;
    sendHtml(reply, layout('Revoke access key', body, staff, '/console/members'), k ? 200 : 404);
  }

  @Post(':username/keys/:id/revoke')
  @AdminOnly()
  async revokeKey(
    @Res() reply: FastifyReply,
    @Staff() staff: StaffSession,
    @Param('username') username: string,
    @Param('id') id: string,
  ): Promise<void> {
    const m = await this.members.get(username);
    if (!(await this.keys.list(m.username)).some((x) => x.id === id)) {
      return sendHtml(
        reply,
        layout('Revoke access key', `<p class="error" role="alert">No such key.</p>`, staff),
        404,
      );
    }
    const k = await this.keys.revoke(id);
    this.recorder.record(
      'admin.key.revoke',
      staff,
      'allowed',
      { memberId: k.memberId, username: m.username },
      { accessKeyId: k.id, accessKeyPrefix: k.prefix },
    );
    void reply.redirect(memberHref(m.username), 303);
  }

  @Post(':username/disable')
  @AdminOnly()
  async disable(
    @Res() reply: FastifyReply,
    @Staff() staff: StaffSession,
    @Param('username') username: string,
  ) {
    const m = await this.members.disable(username);
    this.recorder.record('admin.member.disable', staff, 'allowed', { memberId: m.id, username: m.username });
    void reply.redirect(memberHref(m.username), 303);
  }

  @Post(':username/enable')
  @AdminOnly()
  async enable(
    @Res() reply: FastifyReply,
    @Staff() staff: StaffSession,
    @Param('username') username: string,
  ) {
    const m = await this.members.enable(username);
    this.recorder.record('admin.member.enable', staff, 'allowed', { memberId: m.id, username: m.username });
    void reply.redirect(memberHref(m.username), 303);
  }
}
