import { createHash, timingSafeEqual } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { PassportStrategy } from '@nestjs/passport';
import type { FastifyRequest } from 'fastify';
import { AppScopedStrategy } from '@gatehouse/auth';
import { GatewayConfig } from '@gatehouse/config';

const sha256 = (s: string) => createHash('sha256').update(s, 'utf8').digest();

/** Who passed the admin check: the operator holding ADMIN_TOKEN (there is no other admin identity). */
export interface AdminPrincipal {
  kind: 'admin-token';
}

export type AdminTokenRefusal = 'admin_token_missing' | 'admin_token_invalid';

/**
 * ADMIN_TOKEN, as a passport strategy of this application (its own instance and name, see
 * AppScopedStrategy, so a second gateway in the process never checks with this one's token).
 * The credential is `Authorization: Bearer <token>`; member tokens and access keys are never
 * accepted, whatever they grant on /v2/. Both sides are hashed before `timingSafeEqual`, so the
 * comparison takes the same time whatever the length or the matching prefix of a guess.
 */
@Injectable()
export class AdminTokenStrategy extends PassportStrategy(AppScopedStrategy) {
  private readonly expected: Buffer | null;

  constructor(config: GatewayConfig) {
    super('gatehouse-admin-token');
    this.expected = config.admin.token ? sha256(config.admin.token) : null;
  }

  /** False without ADMIN_TOKEN: the admin API does not exist then. */
  get enabled(): boolean {
    return this.expected !== null;
  }

  validate(request: FastifyRequest): AdminPrincipal | [false, AdminTokenRefusal] {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(request.headers.authorization ?? '');
    if (!match) return [false, 'admin_token_missing'];
    if (this.expected && timingSafeEqual(sha256(match[1]), this.expected)) return { kind: 'admin-token' };
    return [false, 'admin_token_invalid'];
  }
}
