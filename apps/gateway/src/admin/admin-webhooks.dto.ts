import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import {
  ArrayMaxSize,
  IsIn,
  IsInt,
  IsOptional,
  IsString,
  IsUUID,
  Max,
  MaxLength,
  Min,
} from 'class-validator';
import { EVENT_TYPES } from '@gatehouse/events';

export class CreateWebhookDto {
  @ApiProperty({
    example: 'https://hooks.example.com/gatehouse',
    description: 'http(s); never a private address',
  })
  @IsString()
  @MaxLength(2048)
  url!: string;

  @ApiPropertyOptional({
    example: ['pull.manifest', 'access.refused', 'member.*'],
    description: `event types, prefixes like member.* or * (the default): ${EVENT_TYPES.join(', ')}`,
  })
  @IsOptional()
  @IsString({ each: true })
  @ArrayMaxSize(64)
  types?: string[];

  @ApiPropertyOptional({ example: 'alice', description: "only this member's events" })
  @IsOptional()
  @IsString()
  @MaxLength(64)
  member?: string;

  @ApiPropertyOptional({ example: 'acme/app', description: 'only events about this repository or target' })
  @IsOptional()
  @IsString()
  @MaxLength(256)
  repository?: string;

  @ApiPropertyOptional({ example: 'CRM sync' })
  @IsOptional()
  @IsString()
  @MaxLength(256)
  description?: string;
}

export class DeliveriesQueryDto {
  @ApiPropertyOptional({ enum: ['pending', 'delivered', 'dead'] })
  @IsOptional()
  @IsIn(['pending', 'delivered', 'dead'])
  status?: 'pending' | 'delivered' | 'dead';

  @ApiPropertyOptional({ example: 50 })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(1000)
  limit?: number;
}

export class RedeliverDto {
  @ApiPropertyOptional({
    description: 'one delivery by id; without it every dead delivery of the subscription',
  })
  @IsOptional()
  @IsUUID()
  delivery?: string;
}
