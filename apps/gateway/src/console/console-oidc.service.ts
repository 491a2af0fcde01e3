import { Injectable } from '@nestjs/common';
import type * as Oidc from 'openid-client';
import { ConsoleConfig, GatewayConfig } from '@gatehouse/config';
import { AppLogger } from '@gatehouse/observability';
import type { PendingLogin, StaffRole } from './console-session.store';

type OidcSettings = NonNullable<ConsoleConfig['oidc']>;

/** Why a sign-in through the provider did not produce a staff session (the audit reason). */
export type StaffSignInRefusal = 'oidc_failed' | 'no_role' | 'oidc_disabled';

/** A sign-in through the provider that did not produce a staff session. */
export class StaffSignInError extends Error {
  constructor(
    readonly reason: StaffSignInRefusal,
    message: string,
  ) {
    super(message);
  }
}

export interface StaffIdentity {
  issuer: string;
  subject: string;
  name: string;
  role: StaffRole;
  groups: string[];
}

/** The role the groups give: admin wins over support; null when none of them has one. */
export function roleForGroups(
  groups: readonly string[],
  mapping: OidcSettings['roleGroups'],
): StaffRole | null {
  if (groups.some((g) => mapping.admin.includes(g))) return 'admin';
  if (groups.some((g) => mapping.support.includes(g))) return 'support';
  return null;
}

/** A groups claim as providers send it: an array of names, or one name, or a space-separated list. */
export function claimGroups(value: unknown): string[] {
  if (Array.isArray(value)) return value.filter((g): g is string => typeof g === 'string');
  if (typeof value === 'string') return value.split(/[\s,]+/).filter(Boolean);
  return [];
}

const isLoopback = (url: URL) => ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname);

/**
 * The console's OpenID Connect relying party (openid-client, certified): authorization code
 * with PKCE (S256), state and nonce, the ID token checked by the library, groups read from the
 * ID token or else from the userinfo endpoint. The provider's metadata is fetched on first use
 * and kept. Plain http is accepted only for a loopback issuer (tests, a provider on this host).
 */
@Injectable()
export class ConsoleOidcService {
  private readonly settings: OidcSettings | null;
  private configuration: Promise<{ lib: typeof Oidc; config: Oidc.Configuration }> | null = null;

  constructor(
    gateway: GatewayConfig,
    private readonly logger: AppLogger,
  ) {
    this.settings = gateway.console.oidc;
  }

  get enabled(): boolean {
    return this.settings !== null;
  }

  private settingsOrThrow(): OidcSettings {
    if (!this.settings)
      throw new StaffSignInError('oidc_disabled', 'OpenID Connect sign-in is not configured');
    return this.settings;
  }

  private client(): Promise<{ lib: typeof Oidc; config: Oidc.Configuration }> {
    const s = this.settingsOrThrow();
    this.configuration ??= (async () => {
      // openid-client is an ES module: loaded only when a provider is configured.
      const lib = (await import('openid-client')) as typeof Oidc;
      const issuer = new URL(s.issuer);
      const options = isLoopback(issuer) ? { execute: [lib.allowInsecureRequests] } : undefined;
      const config = await lib.discovery(issuer, s.clientId, s.clientSecret, undefined, options);
      return { lib, config };
    })().catch((e: unknown) => {
      this.configuration = null;
      this.logger.warn({ err: e }, 'console: the OpenID provider could not be discovered');
      throw new StaffSignInError('oidc_failed', `the identity provider at ${s.issuer} could not be reached`);
    });
    return this.configuration;
  }

  /** Where to send the browser, and what to remember until it comes back. */
  async start(): Promise<{ url: string; login: PendingLogin }> {
    const s = this.settingsOrThrow();
    const { lib, config } = await this.client();
    const codeVerifier = lib.randomPKCECodeVerifier();
    const login = { state: lib.randomState(), nonce: lib.randomNonce(), codeVerifier };
    const url = lib.buildAuthorizationUrl(config, {
      redirect_uri: s.redirectUrl,
      scope: 'openid profile email groups',
      code_challenge: await lib.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
      state: login.state,
      nonce: login.nonce,
    });
    return { url: url.href, login };
  }

  /** The staff identity behind the provider's answer (`callbackQuery`: the callback's query string). */
  async finish(callbackQuery: string, login: PendingLogin): Promise<StaffIdentity> {
    const s = this.settingsOrThrow();
    const { lib, config } = await this.client();
    const current = new URL(s.redirectUrl);
    current.search = callbackQuery;
    let claims: Record<string, unknown>;
    let accessToken: string;
    try {
      const tokens = await lib.authorizationCodeGrant(config, current, {
        pkceCodeVerifier: login.codeVerifier,
        expectedState: login.state,
        expectedNonce: login.nonce,
        idTokenExpected: true,
      });
      claims = { ...(tokens.claims() ?? {}) };
      accessToken = tokens.access_token;
    } catch (e) {
      this.logger.warn({ err: e }, 'console: OpenID sign-in failed');
      throw new StaffSignInError(
        'oidc_failed',
        `the identity provider refused the sign-in: ${(e as Error).message}`,
      );
    }
    const subject = String(claims.sub);
    if (claims[s.groupsClaim] === undefined) {
      const info = await lib
        .fetchUserInfo(config, accessToken, subject)
        .catch(() => ({}) as Oidc.UserInfoResponse);
      claims = { ...info, ...claims, [s.groupsClaim]: (info as Record<string, unknown>)[s.groupsClaim] };
    }
    const groups = claimGroups(claims[s.groupsClaim]);
    const role = roleForGroups(groups, s.roleGroups);
    const name = String(claims.preferred_username ?? claims.name ?? claims.email ?? subject).slice(0, 200);
    const issuer = String(claims.iss ?? s.issuer);
    if (!role) {
      throw new StaffSignInError(
        'no_role',
        `${name} signed in but is in no group that CONSOLE_ROLE_GROUPS maps to a role; ask an operator to add one`,
      );
    }
    return { issuer, subject, name, role, groups };
  }
}
