import { Body, Controller, Get, Param, Post, Res, UseFilters, UseGuards } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { WebhookSubscriptions, WebhookTargetError, WebhookTester } from '@gatehouse/events';
import { ConsoleAuditRecorder } from './console-audit.recorder';
import { ConsoleErrorsFilter } from './console-errors.filter';
import { AdminOnly, ConsoleGuard, Staff } from './console.guard';
import { csrfField, esc, layout } from './console-html';
import { sendHtml } from './console-http';
import type { StaffSession } from './console-session.store';
import { secretBody, webhookHref, webhookListBody, webhookShowBody } from './console-webhooks-html';

type Form = Record<string, string | undefined>;
const text = (v: unknown, max = 2048) => (typeof v === 'string' ? v.trim().slice(0, max) : '');
const CURRENT = '/console/webhooks';

/**
 * Webhook subscriptions, their deliveries and dead letters, on the same WebhookSubscriptions and
 * WebhookTester as the admin API and `gatehouse webhook`: support reads, admins write; every write
 * an `admin.webhook.*` audit row with the staff identity.
 */
@Controller('console/webhooks')
@UseGuards(ConsoleGuard)
@UseFilters(ConsoleErrorsFilter)
export class ConsoleWebhooksController {
  constructor(
    private readonly subscriptions: WebhookSubscriptions,
    private readonly tester: WebhookTester,
    private readonly recorder: ConsoleAuditRecorder,
  ) {}

  @Get()
  async list(@Res() reply: FastifyReply, @Staff() staff: StaffSession): Promise<void> {
    sendHtml(reply, layout('Webhooks', webhookListBody(await this.withLast(), staff), staff, CURRENT));
  }

  @Post()
  @AdminOnly()
  async add(@Res() reply: FastifyReply, @Staff() staff: StaffSession, @Body() body: Form): Promise<void> {
    const form = {
      url: text(body.url),
      types: text(body.types, 1000),
      member: text(body.member, 300),
      repository: text(body.repository, 300),
      description: text(body.description, 300),
    };
    let added: Awaited<ReturnType<WebhookSubscriptions['add']>>;
    try {
      added = await this.subscriptions.add({
        url: form.url,
        eventTypes: form.types
          .split(',')
          .map((t) => t.trim())
          .filter(Boolean),
        memberFilter: form.member,
        repositoryFilter: form.repository,
        description: form.description,
        // The provider's display name, without control characters (the CLI prints it to a terminal).
        createdBy: `console:${staff.name.replace(/\p{Cc}/gu, '').slice(0, 200)}`,
      });
    } catch (e) {
      if (!(e instanceof WebhookTargetError)) throw e;
      // The form again, with what was typed and why it was refused.
      const page = webhookListBody(await this.withLast(), staff, form, e.message);
      return sendHtml(reply, layout('Webhooks', page, staff, CURRENT), 400);
    }
    const { subscription: s, secret } = added;
    this.recorder.record(
      'admin.webhook.add',
      staff,
      'allowed',
      { username: s.memberFilter, repository: s.repositoryFilter, httpStatus: 201 },
      { webhookId: s.id, url: s.url, eventTypes: s.eventTypes },
    );
    sendHtml(reply, layout('Webhook added', secretBody(s, secret, false), staff, CURRENT), 201);
  }

  @Get(':id')
  async show(@Res() reply: FastifyReply, @Staff() staff: StaffSession, @Param('id') id: string) {
    const s = await this.subscriptions.get(id);
    const [recent, dead] = await Promise.all([
      this.subscriptions.deliveries(s.id, { limit: 50 }),
      this.subscriptions.deliveries(s.id, { status: 'dead', limit: 200 }),
    ]);
    sendHtml(reply, layout(`Webhook ${s.url}`, webhookShowBody(s, recent, dead, staff), staff, CURRENT));
  }

  @Post(':id/test')
  @AdminOnly()
  async test(@Res() reply: FastifyReply, @Staff() staff: StaffSession, @Param('id') id: string) {
    const s = await this.subscriptions.get(id);
    const result = await this.tester.test(s.id);
    this.recorder.record(
      'admin.webhook.test',
      staff,
      result.ok ? 'allowed' : 'error',
      {},
      {
        webhookId: s.id,
        eventId: result.eventId,
        answer: result.status,
        ...(result.ok ? {} : { error: result.error }),
      },
    );
    const outcome = result.ok
      ? `<p class="allowed" role="status">The receiver answered HTTP ${esc(result.status)}: it accepted the signed <code>webhook.test</code> event <code>${esc(result.eventId)}</code>.</p>`
      : `<p class="error" role="alert">The receiver did not accept the test event: ${esc(result.status ? `HTTP ${result.status}, ` : '')}${esc(result.error)}. Check the URL and that it verifies with this subscription's secret.</p>`;
    const page = `${outcome}<p><a href="${esc(webhookHref(s.id))}">Back to the subscription for ${esc(s.url)}</a></p>`;
    sendHtml(reply, layout('Webhook test', page, staff, CURRENT));
  }

  @Post(':id/rotate-secret')
  @AdminOnly()
  async rotate(@Res() reply: FastifyReply, @Staff() staff: StaffSession, @Param('id') id: string) {
    const s = await this.subscriptions.get(id);
    const secret = await this.subscriptions.rotateSecret(s.id);
    this.recorder.record('admin.webhook.rotate_secret', staff, 'allowed', {}, { webhookId: s.id });
    sendHtml(reply, layout('Webhook secret rotated', secretBody(s, secret, true), staff, CURRENT));
  }

  @Post(':id/redeliver')
  @AdminOnly()
  async redeliver(
    @Res() reply: FastifyReply,
    @Staff() staff: StaffSession,
    @Param('id') id: string,
    @Body() body: Form,
  ) {
    const s = await this.subscriptions.get(id);
    const delivery = text(body.delivery, 100);
    const n = await this.subscriptions.redeliver(
      delivery ? { deliveryId: delivery, subscriptionId: s.id } : { subscriptionId: s.id },
    );
    this.recorder.record(
      'admin.webhook.redeliver',
      staff,
      'allowed',
      {},
      { webhookId: s.id, redelivered: n, ...(delivery ? { deliveryId: delivery } : {}) },
    );
    void reply.redirect(webhookHref(s.id), 303);
  }

  @Post(':id/enable')
  @AdminOnly()
  async enable(@Res() reply: FastifyReply, @Staff() staff: StaffSession, @Param('id') id: string) {
    const s = await this.subscriptions.setEnabled(id, true);
    this.recorder.record('admin.webhook.enable', staff, 'allowed', {}, { webhookId: s.id });
    void reply.redirect(webhookHref(s.id), 303);
  }

  @Get(':id/remove')
  @AdminOnly()
  async confirmRemove(@Res() reply: FastifyReply, @Staff() staff: StaffSession, @Param('id') id: string) {
    const s = await this.subscriptions.get(id);
    const body = `<form method="post" action="${esc(webhookHref(s.id))}/remove" class="card">${csrfField(staff)}
<p>Remove the subscription for <code>${esc(s.url)}</code>? Its pending deliveries and dead letters go with it and the receiver gets no more events. This cannot be undone.</p>
<button type="submit" class="danger">Remove the subscription</button> <a href="${esc(webhookHref(s.id))}">Cancel</a></form>`;
    sendHtml(reply, layout('Remove webhook', body, staff, CURRENT));
  }

  @Post(':id/remove')
  @AdminOnly()
  async remove(@Res() reply: FastifyReply, @Staff() staff: StaffSession, @Param('id') id: string) {
    const s = await this.subscriptions.remove(id);
    this.recorder.record('admin.webhook.remove', staff, 'allowed', {}, { webhookId: s.id, url: s.url });
    void reply.redirect(CURRENT, 303);
  }

  /** Every subscription with its newest delivery. */
  private async withLast() {
    const subs = await this.subscriptions.list();
    return Promise.all(
      subs.map(async (sub) => ({
        sub,
        last: (await this.subscriptions.deliveries(sub.id, { limit: 1 }))[0],
      })),
    );
  }
}
