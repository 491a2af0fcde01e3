import { Body, Get, HttpCode, Param, Post } from '@nestjs/common';
import { ApiConflictResponse, ApiCreatedResponse, ApiNotFoundResponse, ApiOkResponse } from '@nestjs/swagger';
import { Clock } from '@gatehouse/observability';
import { EntitlementService, entitlementView } from '@gatehouse/entitlements';
import { AccessKeyService, accessKeyView, MemberService, memberView, parseExpiry } from '@gatehouse/members';
import { AdminAuditRecorder } from './admin-audit.recorder';
import { AdminController } from './admin-controller.decorator';
import { CreateKeyDto, CreateMemberDto } from './admin.dto';

@AdminController('members', 'members')
export class AdminMembersController {
  constructor(
    private readonly members: MemberService,
    private readonly keys: AccessKeyService,
    private readonly entitlements: EntitlementService,
    private readonly recorder: AdminAuditRecorder,
    private readonly clock: Clock,
  ) {}

  @Get()
  @ApiOkResponse({ description: 'every member, by username' })
  async list() {
    return { items: (await this.members.list()).map(memberView) };
  }

  @Post()
  @ApiCreatedResponse({ description: 'the new member' })
  @ApiConflictResponse({ description: 'the username is taken' })
  async create(@Body() body: CreateMemberDto) {
    const m = await this.members.create(body.username, body.note);
    this.recorder.changed('admin.member.create', { memberId: m.id, username: m.username }, 201);
    return memberView(m);
  }

  @Get(':username')
  @ApiOkResponse({ description: 'the member with their access keys and entitlements' })
  @ApiNotFoundResponse({ description: 'no such member' })
  async show(@Param('username') username: string) {
    const m = await this.members.get(username);
    const now = new Date(this.clock.now());
    const [keys, grants] = await Promise.all([
      this.keys.list(m.username),
      this.entitlements.list({ username: m.username }),
    ]);
    return {
      ...memberView(m),
      accessKeys: keys.map((k) => accessKeyView(k, now)),
      entitlements: grants.map((e) => entitlementView(e, now)),
    };
  }

  @Post(':username/disable')
  @HttpCode(200)
  @ApiOkResponse({ description: 'disabled: logins fail and issued tokens stop working within 10 s' })
  async disable(@Param('username') username: string) {
    const m = await this.members.disable(username);
    this.recorder.changed('admin.member.disable', { memberId: m.id, username: m.username }, 200);
    return memberView(m);
  }

  @Post(':username/enable')
  @HttpCode(200)
  @ApiOkResponse({ description: 'enabled again' })
  async enable(@Param('username') username: string) {
    const m = await this.members.enable(username);
    this.recorder.changed('admin.member.enable', { memberId: m.id, username: m.username }, 200);
    return memberView(m);
  }

  @Post(':username/keys')
  @ApiCreatedResponse({
    description: 'the new access key; `key` is the secret, shown in this response only',
  })
  async createKey(@Param('username') username: string, @Body() body: CreateKeyDto) {
    const now = new Date(this.clock.now());
    const expiresAt = body.expires ? parseExpiry(body.expires, now) : null;
    const { key, accessKey } = await this.keys.create(username, { name: body.name ?? null, expiresAt });
    this.recorder.changed(
      'admin.key.create',
      { memberId: accessKey.memberId, username: accessKey.member?.username },
      201,
      { accessKeyId: accessKey.id, accessKeyPrefix: accessKey.prefix, name: accessKey.name, expiresAt },
    );
    return { ...accessKeyView(accessKey, now), key };
  }
}
