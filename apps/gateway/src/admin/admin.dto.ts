import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import {
  ArrayMaxSize,
  ArrayNotEmpty,
  IsIn,
  IsInt,
  IsIP,
  IsNotEmpty,
  IsOptional,
  IsString,
  Matches,
  Max,
  MaxLength,
  Min,
} from 'class-validator';

const EXPIRES_HELP =
  'a date (2026-12-31, valid through that day UTC), a date-time with a zone (2026-12-31T18:00:00Z) or a duration from now (30d, 12h, 2w)';
const TIME_HELP = 'a duration back from now (30m, 6h, 1d, 2w) or an ISO date or date-time (UTC)';

// ── members ────────────────────────────────────────────────────────────────────────────────
export class CreateMemberDto {
  @ApiProperty({ example: 'alice', description: 'lowercase letters, digits, ".", "_" and "-"; 1..64' })
  @IsString()
  @IsNotEmpty()
  @MaxLength(64)
  username!: string;

  @ApiPropertyOptional({ example: 'Acme Corp, contract 2026-17' })
  @IsOptional()
  @IsString()
  @MaxLength(1000)
  note?: string;
}

// ── access keys ────────────────────────────────────────────────────────────────────────────
export class CreateKeyDto {
  @ApiPropertyOptional({ example: 'ci', description: 'a label for the key (which machine uses it)' })
  @IsOptional()
  @IsString()
  @MaxLength(200)
  name?: string;

  @ApiPropertyOptional({ example: '90d', description: `expiry: ${EXPIRES_HELP}` })
  @IsOptional()
  @IsString()
  @IsNotEmpty()
  expires?: string;
}

export class KeysQueryDto {
  @ApiPropertyOptional({ description: "only this member's keys" })
  @IsOptional()
  @IsString()
  @IsNotEmpty()
  member?: string;
}

// ── entitlements ───────────────────────────────────────────────────────────────────────────
export class GrantEntitlementDto {
  @ApiProperty({ example: 'alice' })
  @IsString()
  @IsNotEmpty()
  member!: string;

  @ApiProperty({
    example: 'acme/app',
    description:
      'an image repository, releases:<owner>/<repo> (release assets) or packages:<owner>/<name> (generic package files)',
  })
  @IsString()
  @IsNotEmpty()
  repository!: string;

  @ApiProperty({
    example: ['v1.2.*', 'semver:>=2.0.0 <3.0.0'],
    description: 'tag rules: exact tags, globs, `semver:<range>` or `*`',
  })
  @ArrayNotEmpty()
  @ArrayMaxSize(100)
  @IsString({ each: true })
  @IsNotEmpty({ each: true })
  tags!: string[];

  @ApiPropertyOptional({ example: '2026-12-31', description: `expiry: ${EXPIRES_HELP}` })
  @IsOptional()
  @IsString()
  @IsNotEmpty()
  expires?: string;

  @ApiPropertyOptional()
  @IsOptional()
  @IsString()
  @MaxLength(1000)
  note?: string;
}

export class RevokeEntitlementDto {
  @ApiProperty({ example: 'alice' })
  @IsString()
  @IsNotEmpty()
  member!: string;

  @ApiProperty({ example: 'acme/app' })
  @IsString()
  @IsNotEmpty()
  repository!: string;
}

export class EntitlementsQueryDto {
  @ApiPropertyOptional({ description: "only this member's entitlements" })
  @IsOptional()
  @IsString()
  @IsNotEmpty()
  member?: string;

  @ApiPropertyOptional({ description: 'only entitlements to this repository' })
  @IsOptional()
  @IsString()
  @IsNotEmpty()
  repository?: string;

  @ApiPropertyOptional({ enum: ['live', 'expired'] })
  @IsOptional()
  @IsIn(['live', 'expired'])
  status?: 'live' | 'expired';
}

// ── audit ──────────────────────────────────────────────────────────────────────────────────
export class AuditQueryDto {
  @ApiPropertyOptional({ description: 'attempted or known username, or member id' })
  @IsOptional()
  @IsString()
  @IsNotEmpty()
  member?: string;

  @ApiPropertyOptional({ example: 'acme/app' })
  @IsOptional()
  @IsString()
  @IsNotEmpty()
  repository?: string;

  @ApiPropertyOptional({
    enum: ['image', 'releases', 'packages'],
    description: 'what the target is: images, or the releases and packages of downloads',
  })
  @IsOptional()
  @IsIn(['image', 'releases', 'packages'])
  kind?: 'image' | 'releases' | 'packages';

  @ApiPropertyOptional({ example: 'manifest.get' })
  @IsOptional()
  @IsString()
  @IsNotEmpty()
  action?: string;

  @ApiPropertyOptional({ enum: ['allowed', 'denied', 'error'] })
  @IsOptional()
  @IsIn(['allowed', 'denied', 'error'])
  outcome?: string;

  @ApiPropertyOptional({ example: 'tag_not_entitled' })
  @IsOptional()
  @IsString()
  @IsNotEmpty()
  reason?: string;

  @ApiPropertyOptional({ example: '1d', description: `from this time: ${TIME_HELP}` })
  @IsOptional()
  @IsString()
  @IsNotEmpty()
  since?: string;

  @ApiPropertyOptional({ description: `before this time: ${TIME_HELP}` })
  @IsOptional()
  @IsString()
  @IsNotEmpty()
  until?: string;

  @ApiPropertyOptional({ description: 'client IP' })
  @IsOptional()
  @IsIP()
  ip?: string;

  @ApiPropertyOptional({ description: 'request id (X-Request-Id)' })
  @IsOptional()
  @IsString()
  @IsNotEmpty()
  requestId?: string;

  @ApiPropertyOptional({ description: "a mirror Gatehouse's tag of its member (client_member_tag)" })
  @IsOptional()
  @IsString()
  @IsNotEmpty()
  memberTag?: string;

  @ApiPropertyOptional({
    description: "the X-Request-Id a client sent (client_request_id), e.g. a mirror's own",
  })
  @IsOptional()
  @IsString()
  @IsNotEmpty()
  clientRequestId?: string;

  @ApiPropertyOptional({ minimum: 1, maximum: 1000, default: 100 })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(1000)
  limit?: number;

  @ApiPropertyOptional({ description: 'the `nextCursor` of the previous page' })
  @IsOptional()
  @IsString()
  @Matches(/^[A-Za-z0-9_-]{1,200}$/, { message: 'cursor must be the nextCursor of a previous page' })
  cursor?: string;
}

// ── explain ────────────────────────────────────────────────────────────────────────────────
export class ExplainQueryDto {
  @ApiProperty({ example: 'alice', description: 'username or member id' })
  @IsString()
  @IsNotEmpty()
  member!: string;

  @ApiProperty({
    example: 'acme/app:v1.2.3',
    description:
      'repository, or repository:tag; releases:<owner>/<repo>@<tag> or packages:<owner>/<name>@<version> for downloads',
  })
  @IsString()
  @IsNotEmpty()
  @MaxLength(512)
  image!: string;
}
