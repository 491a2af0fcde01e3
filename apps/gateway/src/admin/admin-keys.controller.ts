import { Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import { ApiNotFoundResponse, ApiOkResponse } from '@nestjs/swagger';
import { Clock } from '@gatehouse/observability';
import { AccessKeyService, accessKeyView } from '@gatehouse/members';
import { AdminAuditRecorder } from './admin-audit.recorder';
import { AdminController } from './admin-controller.decorator';
import { KeysQueryDto } from './admin.dto';

@AdminController('keys', 'access keys')
export class AdminKeysController {
  constructor(
    private readonly keys: AccessKeyService,
    private readonly recorder: AdminAuditRecorder,
    private readonly clock: Clock,
  ) {}

  @Get()
  @ApiOkResponse({ description: 'access keys (never their secrets), newest first' })
  async list(@Query() query: KeysQueryDto) {
    const now = new Date(this.clock.now());
    return { items: (await this.keys.list(query.member)).map((k) => accessKeyView(k, now)) };
  }

  @Post(':key/revoke')
  @HttpCode(200)
  @ApiOkResponse({ description: 'revoked (idempotent); issued tokens stop working within 10 s' })
  @ApiNotFoundResponse({ description: 'no key with that id or prefix' })
  async revoke(@Param('key') idOrPrefix: string) {
    const k = await this.keys.revoke(idOrPrefix);
    this.recorder.changed('admin.key.revoke', { memberId: k.memberId, username: k.member?.username }, 200, {
      accessKeyId: k.id,
      accessKeyPrefix: k.prefix,
    });
    return accessKeyView(k, new Date(this.clock.now()));
  }
}
