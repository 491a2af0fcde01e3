import { Body, Get, HttpCode, Post, Query, Res } from '@nestjs/common';
import { ApiCreatedResponse, ApiOkResponse } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { EntitlementService, entitlementView, isEntitlementLive } from '@gatehouse/entitlements';
import { parseExpiry } from '@gatehouse/members';
import { Clock } from '@gatehouse/observability';
import { AdminAuditRecorder } from './admin-audit.recorder';
import { AdminController } from './admin-controller.decorator';
import { EntitlementsQueryDto, GrantEntitlementDto, RevokeEntitlementDto } from './admin.dto';

@AdminController('entitlements', 'entitlements')
export class AdminEntitlementsController {
  constructor(
    private readonly entitlements: EntitlementService,
    private readonly recorder: AdminAuditRecorder,
    private readonly clock: Clock,
  ) {}

  @Get()
  @ApiOkResponse({ description: 'entitlements (expired ones too unless filtered), by repository' })
  async list(@Query() query: EntitlementsQueryDto) {
    const now = new Date(this.clock.now());
    const rows = await this.entitlements.list({ username: query.member, repository: query.repository });
    const wanted = query.status
      ? rows.filter((e) => isEntitlementLive(e, now) === (query.status === 'live'))
      : rows;
    return { items: wanted.map((e) => entitlementView(e, now)) };
  }

  @Post()
  @ApiCreatedResponse({ description: 'granted (201), or an existing grant replaced (200)' })
  async grant(@Body() body: GrantEntitlementDto, @Res({ passthrough: true }) reply: FastifyReply) {
    const now = new Date(this.clock.now());
    const expiresAt = body.expires ? parseExpiry(body.expires, now) : null;
    const { entitlement: e, created } = await this.entitlements.grant(
      body.member,
      body.repository,
      body.tags,
      {
        expiresAt,
        note: body.note ?? null,
      },
    );
    const status = created ? 201 : 200;
    reply.status(status);
    this.recorder.changed(
      'admin.entitlement.grant',
      { memberId: e.memberId, username: e.member?.username, repository: e.repository },
      status,
      { tagRules: e.tagRules, expiresAt: e.expiresAt, created },
    );
    return { ...entitlementView(e, now), created };
  }

  @Post('revoke')
  @HttpCode(200)
  @ApiOkResponse({ description: 'removed; pulls stop within 10 s, issued tokens included' })
  async revoke(@Body() body: RevokeEntitlementDto) {
    const e = await this.entitlements.revoke(body.member, body.repository);
    this.recorder.changed(
      'admin.entitlement.revoke',
      { memberId: e.memberId, username: e.member?.username, repository: e.repository },
      200,
      { tagRules: e.tagRules },
    );
    return { ...entitlementView(e, new Date(this.clock.now())), revoked: true };
  }
}
