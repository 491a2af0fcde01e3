import { Controller, Get, HttpCode, Post, UseGuards } from '@nestjs/common';
import {
  AuthenticatedTokenRequest,
  TokenCredentials,
  TokenCredentialsGuard,
  TokenResponse,
  TokenService,
} from '@gatehouse/auth';
import { RateLimited } from '@gatehouse/rate-limit';

/**
 * The token endpoint advertised as the challenge's realm. GET is the Docker token spec, POST
 * its OAuth2 form; both answer the same JSON. The per-IP limit runs first (the controller's
 * guard), then the credentials (TokenCredentialsGuard, a passport strategy, which also marks
 * every answer no-store: tokens are credentials).
 */
@Controller('auth/token')
@RateLimited('token')
export class TokenController {
  constructor(private readonly tokens: TokenService) {}

  @Get()
  @UseGuards(TokenCredentialsGuard)
  get(@TokenCredentials() credentials: AuthenticatedTokenRequest): Promise<TokenResponse> {
    return this.tokens.issue(credentials);
  }

  @Post()
  @HttpCode(200)
  @UseGuards(TokenCredentialsGuard)
  post(@TokenCredentials() credentials: AuthenticatedTokenRequest): Promise<TokenResponse> {
    return this.tokens.issue(credentials);
  }
}
