import { ConfigValidationError, loadGatewayConfig, parseRoleGroups } from './gateway-config';

function problemsOf(env: Record<string, string>): string[] {
  try {
    loadGatewayConfig(env);
  } catch (e) {
    if (e instanceof ConfigValidationError) return e.problems;
    throw e;
  }
  return [];
}

const OIDC = {
  CONSOLE_OIDC_ISSUER: 'https://login.example.com/realms/staff',
  CONSOLE_OIDC_CLIENT_ID: 'gatehouse',
  CONSOLE_OIDC_CLIENT_SECRET: 's3cret',
  CONSOLE_OIDC_REDIRECT_URL: 'https://registry.example.com/console/oidc/callback',
  CONSOLE_ROLE_GROUPS: 'admin=ops-admins, platform;support=support-team',
};

describe('the console configuration', () => {
  it('has no OpenID sign-in and 30 min / 12 h sessions by default', () => {
    expect(loadGatewayConfig({}).console).toEqual({
      oidc: null,
      sessionIdleSeconds: 1800,
      sessionMaxSeconds: 43_200,
    });
  });

  it('reads the provider, the groups claim and the role mapping', () => {
    const c = loadGatewayConfig({
      ...OIDC,
      CONSOLE_SESSION_IDLE_MINUTES: '10',
      CONSOLE_SESSION_MAX_HOURS: '8',
    });
    expect(c.console).toEqual({
      oidc: {
        issuer: OIDC.CONSOLE_OIDC_ISSUER,
        clientId: 'gatehouse',
        clientSecret: 's3cret',
        redirectUrl: OIDC.CONSOLE_OIDC_REDIRECT_URL,
        groupsClaim: 'groups',
        roleGroups: { admin: ['ops-admins', 'platform'], support: ['support-team'] },
      },
      sessionIdleSeconds: 600,
      sessionMaxSeconds: 8 * 3600,
    });
  });

  it('names each missing companion of CONSOLE_OIDC_ISSUER, and a missing role mapping', () => {
    const problems = problemsOf({ CONSOLE_OIDC_ISSUER: OIDC.CONSOLE_OIDC_ISSUER });
    expect(problems.filter((p) => p.startsWith('CONSOLE_OIDC_'))).toEqual([
      expect.stringMatching(/^CONSOLE_OIDC_CLIENT_ID is missing/),
      expect.stringMatching(/^CONSOLE_OIDC_CLIENT_SECRET is missing/),
      expect.stringMatching(/^CONSOLE_OIDC_REDIRECT_URL is missing/),
    ]);
    const { CONSOLE_ROLE_GROUPS: _, ...withoutRoles } = OIDC;
    expect(problemsOf(withoutRoles)).toEqual([expect.stringMatching(/^CONSOLE_ROLE_GROUPS is missing/)]);
  });

  it('refuses a redirect URL that is not the callback, a bad mapping and out-of-range lifetimes', () => {
    expect(
      problemsOf({ ...OIDC, CONSOLE_OIDC_REDIRECT_URL: 'https://registry.example.com/elsewhere' }),
    ).toEqual([
      expect.stringMatching(/^CONSOLE_OIDC_REDIRECT_URL must be the public URL of \/console\/oidc\/callback/),
    ]);
    expect(problemsOf({ ...OIDC, CONSOLE_ROLE_GROUPS: 'root=wheel' })).toEqual([
      expect.stringMatching(/^CONSOLE_ROLE_GROUPS must map roles/),
    ]);
    expect(problemsOf({ CONSOLE_SESSION_IDLE_MINUTES: '0', CONSOLE_SESSION_MAX_HOURS: '1000' })).toEqual([
      expect.stringMatching(/^CONSOLE_SESSION_IDLE_MINUTES must be 1 or more/),
      expect.stringMatching(/^CONSOLE_SESSION_MAX_HOURS must be 168/),
    ]);
  });

  it('parses role groups, ignoring blanks', () => {
    expect(parseRoleGroups('support=a,,b ; admin=c')).toEqual({ admin: ['c'], support: ['a', 'b'] });
  });
});
