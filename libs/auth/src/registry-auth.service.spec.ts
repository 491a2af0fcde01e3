import type { AuditEventInput, AuditService } from '@gatehouse/audit';
import type { GatewayConfig } from '@gatehouse/config';
import type { Entitlement, EntitlementService } from '@gatehouse/entitlements';
import type { AccessKey, Member } from '@gatehouse/members';
import { OciError } from '@gatehouse/oci';
import type { MemberStateCache } from './member-state.cache';
import { RegistryAuthService } from './registry-auth.service';
import { signedInRegistryAccess } from './registry-request.context';
import { RegistryTokenService, TokenVerificationError, VerifiedToken } from './registry-token.service';
import { CATALOG_SCOPE, repositoryPullScope, ScopeGrant } from './scope.util';

type Fake<T, K extends keyof T> = jest.Mocked<Pick<T, K>>;

const token = (access: ScopeGrant[]): VerifiedToken => ({
  memberId: 'm1',
  username: 'alice',
  accessKeyId: 'k1',
  jti: 'j1',
  issuedAt: new Date(0),
  expiresAt: new Date(60_000),
  access,
});

/** Typed fakes of every edge RegistryAuthService reaches (immich's newTestService shape). */
function newRegistryAuthService() {
  const config = {
    registry: { realm: 'https://gw.example/auth/token', service: 'gw.example' },
  } as GatewayConfig;
  const tokens: Fake<RegistryTokenService, 'verify'> = { verify: jest.fn() };
  const state: Fake<MemberStateCache, 'get'> = { get: jest.fn() };
  state.get.mockResolvedValue({
    ok: true,
    member: { id: 'm1', username: 'alice' } as Member,
    accessKey: { id: 'k1', prefix: 'ghk_abcdefgh', expiresAt: null } as AccessKey,
  });
  const entitlements: Fake<EntitlementService, 'liveEntitlements'> = { liveEntitlements: jest.fn() };
  entitlements.liveEntitlements.mockResolvedValue([
    { repository: 'acme/app', tagRules: ['*'] } as Entitlement,
  ]);
  const events: AuditEventInput[] = [];
  const sut = new RegistryAuthService(
    config,
    tokens as unknown as RegistryTokenService,
    state as unknown as MemberStateCache,
    entitlements as unknown as EntitlementService,
    { record: (e: AuditEventInput) => events.push(e) } as unknown as AuditService,
  );
  return { sut, tokens, state, entitlements, events };
}

async function refusal(work: Promise<unknown>): Promise<OciError> {
  const err = await work.then(
    () => null,
    (e: unknown) => e,
  );
  if (!(err instanceof OciError)) throw new Error(`expected an OciError, got ${String(err)}`);
  return err;
}

describe('RegistryAuthService', () => {
  it('identifies a Bearer token by verifying it once, and anything else as anonymous', async () => {
    const { sut, tokens } = newRegistryAuthService();
    tokens.verify.mockResolvedValueOnce(token([]));
    expect(await sut.identify('bearer  abc ')).toMatchObject({ kind: 'token' });
    expect(tokens.verify).toHaveBeenCalledWith('abc', 'access');
    expect(await sut.identify(undefined)).toEqual({ kind: 'anonymous', refusal: 'token_missing' });
    expect(await sut.identify('Basic YTpi')).toEqual({ kind: 'anonymous', refusal: 'token_missing' });
    tokens.verify.mockRejectedValueOnce(new TokenVerificationError('token_expired'));
    expect(await sut.identify('Bearer old')).toEqual({ kind: 'anonymous', refusal: 'token_expired' });
    expect(tokens.verify).toHaveBeenCalledTimes(2);
  });

  it('challenges a missing token without an audit row, a bad one with invalid_token and a row', async () => {
    const { sut, state, events } = newRegistryAuthService();
    const scope = repositoryPullScope('acme/app');
    const missing = await refusal(sut.authorize({ kind: 'anonymous', refusal: 'token_missing' }, scope));
    expect(missing.status).toBe(401);
    expect(missing.headers['WWW-Authenticate']).toBe(
      'Bearer realm="https://gw.example/auth/token",service="gw.example",scope="repository:acme/app:pull"',
    );
    expect(events).toEqual([]);
    const expired = await refusal(sut.authorize({ kind: 'anonymous', refusal: 'token_expired' }, scope));
    expect(expired.headers['WWW-Authenticate']).toContain('error="invalid_token"');
    expect(events).toMatchObject([
      { action: 'registry.auth.refuse', reason: 'token_expired', httpStatus: 401 },
    ]);
    expect(state.get).not.toHaveBeenCalled();
  });

  it('refuses a token whose key was revoked since, before loading any entitlement', async () => {
    const { sut, state, entitlements, events } = newRegistryAuthService();
    state.get.mockResolvedValueOnce({ ok: false, reason: 'key_revoked' });
    const err = await refusal(sut.authorize({ kind: 'token', token: token([]) }, null));
    expect(err.headers['WWW-Authenticate']).toContain('error="invalid_token"');
    expect(entitlements.liveEntitlements).not.toHaveBeenCalled();
    expect(events).toMatchObject([
      { reason: 'key_revoked', memberId: 'm1', details: { accessKeyId: 'k1', tokenId: 'j1' } },
    ]);
  });

  it('asks for a new token when the member is entitled but the token predates it', async () => {
    const { sut } = newRegistryAuthService();
    const err = await refusal(
      sut.authorize({ kind: 'token', token: token([]) }, repositoryPullScope('acme/app')),
    );
    expect(err.headers['WWW-Authenticate']).toContain('error="insufficient_scope"');
  });

  it('leaves an unentitled repository to the handler (404), and cuts the token to live entitlements', async () => {
    const { sut, state, entitlements } = newRegistryAuthService();
    const stale = token([repositoryPullScope('acme/app'), repositoryPullScope('acme/gone'), CATALOG_SCOPE]);
    const { principal } = await sut.authorize(
      { kind: 'token', token: stale },
      repositoryPullScope('acme/gone'),
    );
    expect(principal.requiredScopeGranted).toBe(false);
    expect(principal.access).toEqual([repositoryPullScope('acme/app'), CATALOG_SCOPE]);
    expect(state.get).toHaveBeenCalledTimes(1);
    expect(entitlements.liveEntitlements).toHaveBeenCalledTimes(1);
  });

  it("tells a download surface a verified token's member, or why not with the audit's names", async () => {
    const { sut, state } = newRegistryAuthService();
    expect(await sut.memberOf(token([]))).toEqual({
      ok: true,
      memberId: 'm1',
      username: 'alice',
      accessKey: { prefix: 'ghk_abcdefgh', expiresAt: null },
    });
    state.get.mockResolvedValueOnce({ ok: false, reason: 'member_disabled' });
    expect(await sut.memberOf(token([]))).toEqual({
      ok: false,
      reason: 'member_disabled',
      who: { memberId: 'm1', username: 'alice', accessKeyId: 'k1', tokenId: 'j1' },
    });
  });

  it('a signed-in member (the portal) gets the access the token path builds for the same route', async () => {
    const { sut, tokens } = newRegistryAuthService();
    const live = [{ repository: 'acme/app', tagRules: ['*'] } as Entitlement];
    tokens.verify.mockResolvedValueOnce(token([repositoryPullScope('acme/app')]));
    const viaToken = await sut.authorizeRoute(await sut.identify('Bearer t'), {
      kind: 'tags',
      name: 'acme/app',
    });
    const who = {
      memberId: 'm1',
      username: 'alice',
      accessKeyId: 'k1',
      accessKey: { prefix: 'ghk_abcdefgh', expiresAt: null },
    };
    const viaSession = signedInRegistryAccess(who, { kind: 'tags', name: 'acme/app' }, live, 'portal');
    expect(viaSession).toEqual({ ...viaToken, principal: { ...viaToken.principal, tokenId: 'portal' } });
    // A repository no live entitlement names: refused like a token without it (404, never 401).
    const other = signedInRegistryAccess(who, { kind: 'tags', name: 'acme/secret' }, live, 'portal');
    expect(other.entitlement).toBeNull();
    expect(other.principal).toMatchObject({ access: [], requiredScopeGranted: false });
  });
});
