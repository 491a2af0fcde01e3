import { Global, Module } from '@nestjs/common';
import { AuditModule } from '@gatehouse/audit';
import { GatewayConfig } from '@gatehouse/config';
import { EntitlementsModule } from '@gatehouse/entitlements';
import { MembersModule } from '@gatehouse/members';
import { MemberChangeListener } from './member-change.listener';
import { MemberStateCache } from './member-state.cache';
import { RegistryAuthService } from './registry-auth.service';
import { RegistryTokenStrategy } from './registry-token.strategy';
import { RegistryTokenService } from './registry-token.service';
import { DownloadCredentialsStrategy } from './download-credentials.strategy';
import { SecretFingerprintCheck } from './secret-fingerprint.check';
import { TokenCredentialsStrategy } from './token-credentials.strategy';
import { TokenSigningKey } from './token-signing-key';
import { TokenService } from './token.service';

/**
 * Token issuing and /v2/ authentication. Global so the registry controller can inject
 * RegistryAuthService and EntitlementService without importing the auth wiring itself.
 * The passport strategies are providers: one instance per application, each registered under
 * a name of its own (AppScopedStrategy), so two gateways in one process never share one.
 * `LoginRateLimiter` (used by TokenService) is provided by the global RateLimitModule.
 */
@Global()
@Module({
  imports: [AuditModule, MembersModule, EntitlementsModule],
  providers: [
    {
      provide: TokenSigningKey,
      inject: [GatewayConfig],
      useFactory: (config: GatewayConfig) => TokenSigningKey.fromConfig(config.auth),
    },
    RegistryTokenService,
    SecretFingerprintCheck,
    MemberStateCache,
    MemberChangeListener,
    TokenService,
    RegistryAuthService,
    RegistryTokenStrategy,
    TokenCredentialsStrategy,
    DownloadCredentialsStrategy,
  ],
  exports: [
    DownloadCredentialsStrategy,
    RegistryAuthService,
    RegistryTokenStrategy,
    TokenCredentialsStrategy,
    TokenService,
    RegistryTokenService,
    MemberStateCache,
    MemberChangeListener,
    EntitlementsModule,
    MembersModule,
  ],
})
export class AuthModule {}
