import { Body, Controller, Get, Headers, HttpCode, Post, Query, Res } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { TokenParams, TokenResponse, TokenService } from '@gatehouse/auth';
import { RateLimited } from '@gatehouse/rate-limit';

/**
 * The token endpoint advertised as the challenge's realm. GET is the Docker token spec, POST
 * its OAuth2 form; both answer the same JSON. Tokens are credentials: never cached.
 */
@Controller('auth/token')
@RateLimited('token')
export class TokenController {
  constructor(private readonly tokens: TokenService) {}

  @Get()
  get(
    @Headers('authorization') authorization: string | undefined,
    @Query() query: TokenParams,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<TokenResponse> {
    noStore(reply);
    return this.tokens.handleGet(authorization, query ?? {});
  }

  @Post()
  @HttpCode(200)
  post(
    @Headers('authorization') authorization: string | undefined,
    @Body() form: TokenParams | undefined,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<TokenResponse> {
    noStore(reply);
    return this.tokens.handlePost(authorization, form && typeof form === 'object' ? form : {});
  }
}

function noStore(reply: FastifyReply): void {
  reply.header('Cache-Control', 'no-store');
  reply.header('Pragma', 'no-cache');
}
