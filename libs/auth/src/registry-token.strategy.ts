import { Injectable } from '@nestjs/common';
import { PassportStrategy } from '@nestjs/passport';
import type { FastifyRequest } from 'fastify';
import { AppScopedStrategy } from './app-scoped-passport';
import { RegistryAuthService } from './registry-auth.service';
import { RegistryIdentity } from './registry-request.context';

/**
 * The registry JWT, as a passport strategy of this application: the Bearer token of a /v2/
 * request verified once (RegistryAuthService.identify). A verified token succeeds with the
 * token identity; no token or a refused one fails with the anonymous identity, which the
 * registry guard keeps so the rate limit can count the request before it is refused.
 */
@Injectable()
export class RegistryTokenStrategy extends PassportStrategy(AppScopedStrategy) {
  constructor(private readonly auth: RegistryAuthService) {
    super('gatehouse-registry-jwt');
  }

  async validate(request: FastifyRequest): Promise<RegistryIdentity | [false, RegistryIdentity]> {
    const authorization = request.headers.authorization;
    const identity = await this.auth.identify(typeof authorization === 'string' ? authorization : undefined);
    return identity.kind === 'token' ? identity : [false, identity];
  }
}
