import { Body, Delete, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import { ApiCreatedResponse, ApiOkResponse } from '@nestjs/swagger';
import { WebhookSubscriptions, WebhookTester } from '@gatehouse/events';
import { AdminAuditRecorder } from './admin-audit.recorder';
import { AdminController } from './admin-controller.decorator';
import { CreateWebhookDto, DeliveriesQueryDto, RedeliverDto } from './admin-webhooks.dto';

/** Webhook subscriptions (dev-docs/events.md); each change is an `admin.webhook.*` audit row. */
@AdminController('webhooks', 'webhooks')
export class AdminWebhooksController {
  constructor(
    private readonly subscriptions: WebhookSubscriptions,
    private readonly tester: WebhookTester,
    private readonly recorder: AdminAuditRecorder,
  ) {}

  @Post()
  @ApiCreatedResponse({ description: 'the subscription; `secret` (whsec_…) is shown in this response only' })
  async add(@Body() body: CreateWebhookDto) {
    const { subscription, secret } = await this.subscriptions.add({
      url: body.url,
      eventTypes: body.types ?? ['*'],
      memberFilter: body.member,
      repositoryFilter: body.repository,
      description: body.description,
      createdBy: 'admin_token',
    });
    this.recorder.changed('admin.webhook.add', {}, 201, {
      webhookId: subscription.id,
      url: subscription.url,
    });
    return { ...subscription, secret };
  }

  @Get()
  @ApiOkResponse({ description: 'every subscription (secrets never shown)' })
  async list() {
    return { items: await this.subscriptions.list() };
  }

  @Delete(':id')
  @ApiOkResponse({ description: 'removed with its deliveries' })
  async remove(@Param('id') id: string) {
    const sub = await this.subscriptions.remove(id);
    this.recorder.changed('admin.webhook.remove', {}, 200, { webhookId: sub.id, url: sub.url });
    return { ...sub, removed: true };
  }

  @Post(':id/test')
  @HttpCode(200)
  @ApiOkResponse({ description: 'one signed webhook.test event posted now: the receiver’s answer' })
  async test(@Param('id') id: string) {
    return this.tester.test(id);
  }

  @Get(':id/deliveries')
  @ApiOkResponse({ description: 'newest first: status, attempts, last answer or error' })
  async deliveries(@Param('id') id: string, @Query() query: DeliveriesQueryDto) {
    return { items: await this.subscriptions.deliveries(id, { status: query.status, limit: query.limit }) };
  }

  @Post(':id/redeliver')
  @HttpCode(200)
  @ApiOkResponse({ description: 'deliveries queued again (same event ids)' })
  async redeliver(@Param('id') id: string, @Body() body: RedeliverDto) {
    const sub = await this.subscriptions.get(id);
    const n = await this.subscriptions.redeliver(
      body.delivery ? { deliveryId: body.delivery, subscriptionId: sub.id } : { subscriptionId: sub.id },
    );
    this.recorder.changed('admin.webhook.redeliver', {}, 200, { webhookId: sub.id, redelivered: n });
    return { redelivered: n };
  }

  @Post(':id/enable')
  @HttpCode(200)
  @ApiOkResponse({ description: 'enabled again (after a 410 Gone disabled it)' })
  async enable(@Param('id') id: string) {
    const sub = await this.subscriptions.setEnabled(id, true);
    this.recorder.changed('admin.webhook.enable', {}, 200, { webhookId: sub.id });
    return sub;
  }

  @Post(':id/rotate-secret')
  @HttpCode(200)
  @ApiOkResponse({ description: 'the new secret (shown once); the previous one keeps signing beside it' })
  async rotate(@Param('id') id: string) {
    const secret = await this.subscriptions.rotateSecret(id);
    this.recorder.changed('admin.webhook.rotate_secret', {}, 200, { webhookId: id });
    return { secret };
  }
}
