import { Get, Query } from '@nestjs/common';
import { ApiOkResponse } from '@nestjs/swagger';
import { AdminController } from './admin-controller.decorator';
import { ExplainQueryDto } from './admin.dto';
import { AdminExplainService } from './admin-explain.service';

@AdminController('explain', 'support')
export class AdminExplainController {
  constructor(private readonly explainer: AdminExplainService) {}

  @Get()
  @ApiOkResponse({
    description:
      'whether the member may pull repository[:tag] now, the first obstacle as `reason` (null when allowed; member_unknown, member_disabled, no_access_key, key_revoked, key_expired, no_usable_key, repository_not_entitled, entitlement_expired, tag_not_entitled) and the facts behind it',
  })
  explain(@Query() q: ExplainQueryDto) {
    return this.explainer.explain(q.member, q.image);
  }
}
