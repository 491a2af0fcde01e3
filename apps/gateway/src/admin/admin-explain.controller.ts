import { Get, HttpStatus, Query } from '@nestjs/common';
import { ApiOkResponse } from '@nestjs/swagger';
import { AccessExplainService, formatTarget } from '@gatehouse/entitlements';
import { PullThroughService } from '@gatehouse/pull-through';
import { ImageReferenceError, parseTargetReference, TargetReference } from '@gatehouse/oci';
import { AdminController } from './admin-controller.decorator';
import { adminHttpError } from './admin-errors.interceptor';
import { ExplainQueryDto } from './admin.dto';
import { explainView } from './admin-views';

/**
 * `acme/app:v1.2.3`, `acme/app`, `releases:acme/tool@v1.2.0` → target and tag, by the one
 * target parser (libs/oci).
 */
export function splitImage(image: string): { repository: string; tag: string | null } {
  let parsed: TargetReference;
  try {
    parsed = parseTargetReference(image);
  } catch (e) {
    if (e instanceof ImageReferenceError) throw adminHttpError(HttpStatus.BAD_REQUEST, e.message, e.problem);
    throw e;
  }
  if (parsed.digest !== null) {
    throw adminHttpError(
      HttpStatus.BAD_REQUEST,
      `"${image}" names a digest; explain works on tags (a digest is allowed when an entitled tag references it)`,
      'digest_not_explainable',
    );
  }
  return { repository: formatTarget(parsed), tag: parsed.tag };
}

@AdminController('explain', 'support')
export class AdminExplainController {
  constructor(
    private readonly access: AccessExplainService,
    private readonly pull: PullThroughService,
  ) {}

  @Get()
  @ApiOkResponse({
    description:
      'whether the member may pull repository[:tag] now, the first obstacle as `reason` (null when allowed; member_unknown, member_disabled, no_access_key, key_revoked, key_expired, no_usable_key, repository_not_entitled, entitlement_expired, tag_not_entitled, subject_not_reachable) and the facts behind it',
  })
  async explain(@Query() q: ExplainQueryDto) {
    const { repository, tag } = splitImage(q.image);
    return explainView(await this.access.explain(q.member, repository, tag, this.pull), repository, tag);
  }
}
