import {
  applyDecorators,
  Controller,
  UseGuards,
  UseInterceptors,
  UsePipes,
  ValidationPipe,
} from '@nestjs/common';
import { ApiBearerAuth, ApiTags, ApiUnauthorizedResponse } from '@nestjs/swagger';
import { AdminErrorsInterceptor } from './admin-errors.interceptor';
import { AdminTokenGuard } from './admin-token.guard';

/**
 * An admin controller under /admin/<path>: ADMIN_TOKEN required, bodies and queries validated
 * against their DTO (unknown fields refused) with 400 `{statusCode, error, message[]}`.
 */
export function AdminController(path: string, tag: string): ClassDecorator {
  return applyDecorators(
    Controller(`admin/${path}`),
    UseGuards(AdminTokenGuard),
    UsePipes(
      new ValidationPipe({
        whitelist: true,
        forbidNonWhitelisted: true,
        transform: true,
        stopAtFirstError: false,
      }),
    ),
    UseInterceptors(AdminErrorsInterceptor),
    ApiTags(tag),
    ApiBearerAuth('admin-token'),
    ApiUnauthorizedResponse({ description: 'missing or wrong ADMIN_TOKEN' }),
  );
}
