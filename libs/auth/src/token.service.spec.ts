import type { AuditEventInput, AuditService } from '@gatehouse/audit';
import type { GatewayConfig } from '@gatehouse/config';
import type { Entitlement, EntitlementService } from '@gatehouse/entitlements';
import type { AccessKey, AccessKeyService, Member } from '@gatehouse/members';
import type { AppLogger } from '@gatehouse/observability';
import type { EntitlementKind } from '@gatehouse/oci';
import { LoginRateLimiter } from './login-rate-limiter.service';
import type { RegistryTokenService } from './registry-token.service';
import { ScopeGrant } from './scope.util';
import { TokenService } from './token.service';

type Fake<T, K extends keyof T> = jest.Mocked<Pick<T, K>>;

const member = { id: 'm1', username: 'alice', status: 'active' } as Member;
const accessKey = { id: 'k1', prefix: 'ghk_abcd', expiresAt: null } as AccessKey;
const basic = (user: string, pass: string) => `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;

/** Typed fakes of every edge TokenService reaches (immich's newTestService shape). */
function newTokenService() {
  const config = { registry: { service: 'gw.example' } } as GatewayConfig;
  const keys: Fake<AccessKeyService, 'check' | 'checkById' | 'touchLastUsed'> = {
    check: jest.fn(),
    checkById: jest.fn(),
    touchLastUsed: jest.fn(),
  };
  keys.check.mockImplementation(async (username, key) =>
    username === 'alice' && key === 'good'
      ? { ok: true, member, accessKey }
      : { ok: false, reason: 'bad_credentials', member: null, accessKey: null },
  );
  keys.touchLastUsed.mockResolvedValue(undefined);
  const granted: Record<EntitlementKind, string[]> = {
    image: ['acme/app'],
    releases: ['acme/tool'],
    packages: ['acme/cli'],
  };
  const entitlements: Fake<EntitlementService, 'liveEntitlements'> = { liveEntitlements: jest.fn() };
  entitlements.liveEntitlements.mockImplementation(async (_id, kind = 'image') =>
    granted[kind].map((repository) => ({ kind, repository, tagRules: ['*'] }) as Entitlement),
  );
  const signed = { issuedAt: new Date(0), expiresIn: 300, expiresAt: new Date(300_000) };
  const tokens: Fake<RegistryTokenService, 'verify' | 'signAccessToken' | 'signRefreshToken'> = {
    verify: jest.fn(),
    signAccessToken: jest.fn(),
    signRefreshToken: jest.fn(),
  };
  tokens.signAccessToken.mockResolvedValue({ token: 'access-jwt', ...signed });
  tokens.signRefreshToken.mockResolvedValue({ token: 'refresh-jwt', ...signed });
  const limiter: jest.Mocked<LoginRateLimiter> = {
    check: jest.fn(),
    recordFailure: jest.fn(),
    recordSuccess: jest.fn(),
  };
  limiter.check.mockResolvedValue({ limited: false } as Awaited<ReturnType<LoginRateLimiter['check']>>);
  const events: AuditEventInput[] = [];
  const sut = new TokenService(
    config,
    keys as unknown as AccessKeyService,
    entitlements as unknown as EntitlementService,
    tokens as unknown as RegistryTokenService,
    limiter,
    { record: (e: AuditEventInput) => events.push(e) } as unknown as AuditService,
    { warn: jest.fn() } as unknown as AppLogger,
  );
  return { sut, keys, entitlements, tokens, limiter, events };
}

describe('TokenService', () => {
  it('reads GET (Basic, repeated scope) and POST (form, space-separated scope) alike', () => {
    const { sut } = newTokenService();
    const get = sut.readRequest('GET', basic('alice', 'good'), {
      scope: ['repository:acme/app:pull', 'release:acme/tool:pull'],
      offline_token: 'TRUE',
    });
    expect(get).toMatchObject({ username: 'alice', password: 'good', offline: true, grantType: 'password' });
    expect(get.scopes.map((s) => s.type)).toEqual(['repository', 'release']);
    const post = sut.readRequest('POST', undefined, {
      grant_type: 'password',
      username: 'alice',
      password: 'good',
      scope: 'repository:acme/app:pull package:acme/cli:pull',
    });
    expect(post.scopes.map((s) => s.name)).toEqual(['acme/app', 'acme/cli']);
    expect(post.scopeText).toBe('repository:acme/app:pull package:acme/cli:pull');
  });

  it('refuses a malformed scope or grant type with 400, audited', () => {
    const { sut, events } = newTokenService();
    expect(() => sut.readRequest('GET', undefined, { scope: 'repository' })).toThrow(
      expect.objectContaining({ code: 'REQUEST_INVALID' }),
    );
    expect(() => sut.readRequest('POST', undefined, { grant_type: 'client_credentials' })).toThrow(
      /unsupported grant_type "client_credentials"/,
    );
    expect(events.map((e) => e.reason)).toEqual(['malformed_request', 'malformed_request']);
  });

  it('answers every bad credential with the same Basic 401 and counts the failure', async () => {
    const { sut, limiter, events } = newTokenService();
    const err = await sut.authenticate(sut.readRequest('GET', basic('alice', 'wrong'), {})).then(
      () => null,
      (e: unknown) => e as { status: number; headers: Record<string, string>; message: string },
    );
    if (!err) throw new Error('a wrong key was accepted');
    expect(err).toMatchObject({ status: 401, message: 'invalid username or access key' });
    expect(err.headers['WWW-Authenticate']).toBe('Basic realm="gw.example"');
    expect(limiter.recordFailure).toHaveBeenCalledWith(undefined, 'alice');
    expect(events).toMatchObject([{ action: 'token.refuse', reason: 'bad_credentials', username: 'alice' }]);
  });

  it('answers a login the database cannot check with an audited 503, counting no failure', async () => {
    const { sut, keys, entitlements, limiter, events } = newTokenService();
    const refused = () =>
      Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
    keys.check.mockRejectedValueOnce(refused());
    await expect(sut.authenticate(sut.readRequest('GET', basic('alice', 'good'), {}))).rejects.toMatchObject({
      code: 'UNAVAILABLE',
      status: 503,
      headers: { 'Retry-After': '5' },
      message: expect.stringMatching(/cannot reach its database/),
    });
    expect(limiter.recordFailure).not.toHaveBeenCalled();
    entitlements.liveEntitlements.mockRejectedValueOnce(refused());
    const read = sut.readRequest('GET', basic('alice', 'good'), { scope: 'repository:acme/app:pull' });
    await expect(sut.issue(await sut.authenticate(read))).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    expect(events).toMatchObject([
      { action: 'token.refuse', reason: 'database_unavailable', httpStatus: 503, username: 'alice' },
      { action: 'token.refuse', reason: 'database_unavailable', httpStatus: 503, memberId: 'm1' },
    ]);
    keys.check.mockRejectedValueOnce(new Error('syntax error'));
    await expect(sut.authenticate(sut.readRequest('GET', basic('alice', 'good'), {}))).rejects.toThrow(
      'syntax error',
    );
    expect(events).toHaveLength(2);
  });

  it('checks the failed-login limit before the credentials', async () => {
    const { sut, keys, limiter } = newTokenService();
    limiter.check.mockResolvedValueOnce({ limited: true, retryAfterSeconds: 30, key: 'ip' } as Awaited<
      ReturnType<LoginRateLimiter['check']>
    >);
    await expect(sut.authenticate(sut.readRequest('GET', basic('alice', 'good'), {}))).rejects.toMatchObject({
      code: 'TOOMANYREQUESTS',
      headers: { 'Retry-After': '30' },
    });
    expect(keys.check).not.toHaveBeenCalled();
  });

  it('grants the requested scopes the member is entitled to, download scopes included', async () => {
    const { sut, tokens, entitlements, events } = newTokenService();
    const request = sut.readRequest('POST', basic('alice', 'good'), {
      grant_type: 'password',
      scope: [
        'repository:acme/app:pull,push',
        'repository:acme/tool:pull',
        'release:acme/tool:pull',
        'release:acme/app:pull',
        'package:acme/cli:*',
      ].join(' '),
    });
    const response = await sut.issue(await sut.authenticate(request));
    const granted: ScopeGrant[] = [
      { type: 'repository', name: 'acme/app', actions: ['pull'] },
      { type: 'release', name: 'acme/tool', actions: ['pull'] },
      { type: 'package', name: 'acme/cli', actions: ['pull'] },
    ];
    expect(tokens.signAccessToken).toHaveBeenCalledWith(
      { memberId: 'm1', username: 'alice', accessKeyId: 'k1' },
      granted,
    );
    expect(response).toMatchObject({ token: 'access-jwt', access_token: 'access-jwt', expires_in: 300 });
    expect(response.scope).toBe(request.scopeText);
    expect(entitlements.liveEntitlements.mock.calls.map((c) => c[1]).sort()).toEqual([
      'image',
      'packages',
      'releases',
    ]);
    expect(events.at(-1)).toMatchObject({ action: 'token.issue', outcome: 'allowed' });
  });

  it('issues a login token without loading entitlements, and a refresh token only when asked', async () => {
    const { sut, tokens, entitlements } = newTokenService();
    const login = await sut.issue(await sut.authenticate(sut.readRequest('GET', basic('alice', 'good'), {})));
    expect(tokens.signAccessToken).toHaveBeenCalledWith(expect.anything(), []);
    expect(entitlements.liveEntitlements).not.toHaveBeenCalled();
    expect(login.refresh_token).toBeUndefined();
    const offline = sut.readRequest('GET', basic('alice', 'good'), { offline_token: 'true' });
    expect((await sut.issue(await sut.authenticate(offline))).refresh_token).toBe('refresh-jwt');
  });
});
