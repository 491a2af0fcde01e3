import { ExecutionContext, Injectable, createParamDecorator } from '@nestjs/common';
import { PassportStrategy } from '@nestjs/passport';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { AppPassportGuard, AppScopedStrategy } from './app-scoped-passport';
import { AuthenticatedTokenRequest, TokenParams, TokenService } from './token.service';

/**
 * The token endpoint's credentials, as a passport strategy of this application: Basic
 * username/access key (`GET`, and `POST grant_type=password` without form fields), the OAuth2
 * password form, or a refresh token. Extraction and verification are TokenService's
 * (`readRequest`, `authenticate`): the failed-login limit is checked before the credentials
 * are, each refusal is audited, and every refusal is the endpoint's own 400/401/429 OciError,
 * thrown through passport unchanged.
 */
@Injectable()
export class TokenCredentialsStrategy extends PassportStrategy(AppScopedStrategy) {
  constructor(private readonly tokens: TokenService) {
    super('gatehouse-token-credentials');
  }

  validate(request: FastifyRequest): Promise<AuthenticatedTokenRequest> {
    const method = request.method === 'POST' ? 'POST' : 'GET';
    const source: unknown = method === 'POST' ? request.body : request.query;
    const params = source && typeof source === 'object' ? (source as TokenParams) : {};
    const authorization = request.headers.authorization;
    const read = this.tokens.readRequest(
      method,
      typeof authorization === 'string' ? authorization : undefined,
      params,
    );
    return this.tokens.authenticate(read);
  }
}

const PROPERTY = 'gatehouseToken';

/** Runs TokenCredentialsStrategy (after the per-IP limit); the handler reads the result with @TokenCredentials(). */
@Injectable()
export class TokenCredentialsGuard extends AppPassportGuard<AuthenticatedTokenRequest> {
  constructor(
    strategy: TokenCredentialsStrategy,
    private readonly tokens: TokenService,
  ) {
    super(strategy, PROPERTY);
  }

  /** Token answers (tokens and refusals alike) are never cached, not even by a proxy. */
  override canActivate(context: ExecutionContext): Promise<boolean> {
    context
      .switchToHttp()
      .getResponse<FastifyReply>()
      .header('Cache-Control', 'no-store')
      .header('Pragma', 'no-cache');
    return super.canActivate(context) as Promise<boolean>;
  }

  protected accept(user: unknown): AuthenticatedTokenRequest {
    return user as AuthenticatedTokenRequest;
  }

  /** The strategy throws its refusals; a silent failure still gets the endpoint's own 401. */
  protected refuse(): never {
    throw this.tokens.unauthorized('bad_credentials');
  }
}

/** Handler parameter: the verified token request TokenCredentialsGuard left. */
export const TokenCredentials = createParamDecorator(
  (_data: unknown, ctx: ExecutionContext): AuthenticatedTokenRequest => {
    const value = ctx.switchToHttp().getRequest<Record<string, unknown>>()[PROPERTY];
    if (!value) throw new Error('the token handler ran without TokenCredentialsGuard');
    return value as AuthenticatedTokenRequest;
  },
);
