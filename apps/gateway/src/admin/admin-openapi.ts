import { Controller, Get, Injectable, NotFoundException } from '@nestjs/common';
import { INestApplication } from '@nestjs/common';
import { ApiExcludeController, DocumentBuilder, OpenAPIObject, SwaggerModule } from '@nestjs/swagger';

/** The admin API's OpenAPI document, built once at start from the admin controllers. */
@Injectable()
export class AdminOpenApiDocument {
  document: OpenAPIObject | null = null;
}

/**
 * GET /admin/openapi.json. Readable without the token (it describes routes, holds no data), so
 * client generators and API explorers can fetch it; absent (404) while the admin API is disabled.
 */
@Controller('admin')
@ApiExcludeController()
export class AdminOpenApiController {
  constructor(private readonly holder: AdminOpenApiDocument) {}

  @Get('openapi.json')
  get(): OpenAPIObject {
    if (!this.holder.document) {
      throw new NotFoundException({
        statusCode: 404,
        error: 'Not Found',
        message: ['the admin API is disabled: the operator must set ADMIN_TOKEN to enable it'],
      });
    }
    return this.holder.document;
  }
}

/** Builds the document from the admin routes only (not /v2/, which is the OCI distribution spec). */
export function installAdminOpenApi(app: INestApplication, adminModule: unknown): void {
  const config = new DocumentBuilder()
    .setTitle('Gatehouse admin API')
    .setDescription(
      'Members, access keys, entitlements, the audit log and "why can\'t X pull Y?". Every route needs `Authorization: Bearer <ADMIN_TOKEN>`. Errors are `{statusCode, error, message[]}`.',
    )
    .setVersion('1')
    .addBearerAuth({ type: 'http', scheme: 'bearer', description: 'ADMIN_TOKEN' }, 'admin-token')
    .build();
  app.get(AdminOpenApiDocument).document = SwaggerModule.createDocument(app, config, {
    include: [adminModule as never],
  });
}
