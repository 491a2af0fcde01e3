import { Get, HttpStatus, Query } from '@nestjs/common';
import { ApiOkResponse } from '@nestjs/swagger';
import { AccessExplainService, normalizeRepository } from '@gatehouse/entitlements';
import { isValidTag } from '@gatehouse/oci';
import { AdminController } from './admin-controller.decorator';
import { adminHttpError } from './admin-errors.interceptor';
import { ExplainQueryDto } from './admin.dto';
import { explainView } from './admin-views';

/** `acme/app:v1.2.3` → repository and tag; the tag is after the last colon of the last component. */
export function splitImage(image: string): { repository: string; tag: string | null } {
  const value = image.trim();
  const slash = value.lastIndexOf('/');
  const colon = value.indexOf(':', slash + 1);
  if (colon < 0) return { repository: normalizeRepository(value), tag: null };
  const tag = value.slice(colon + 1);
  if (!isValidTag(tag)) {
    throw adminHttpError(
      HttpStatus.BAD_REQUEST,
      `"${tag}" is not a tag (letters, digits, "_", "." and "-"; up to 128)`,
    );
  }
  return { repository: normalizeRepository(value.slice(0, colon)), tag };
}

@AdminController('explain', 'support')
export class AdminExplainController {
  constructor(private readonly access: AccessExplainService) {}

  @Get()
  @ApiOkResponse({
    description:
      'whether the member may pull repository[:tag] now, the first obstacle as `reason` (null when allowed; member_unknown, member_disabled, no_access_key, key_revoked, key_expired, no_usable_key, repository_not_entitled, entitlement_expired, tag_not_entitled) and the facts behind it',
  })
  async explain(@Query() q: ExplainQueryDto) {
    const { repository, tag } = splitImage(q.image);
    return explainView(await this.access.explain(q.member, repository, tag), repository, tag);
  }
}
