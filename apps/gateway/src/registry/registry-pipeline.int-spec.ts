import { AuditQueryService, AuditService } from '@gatehouse/audit';
import { MemberStateCache, RegistryTokenService } from '@gatehouse/auth';
import { EntitlementService } from '@gatehouse/entitlements';
import {
  StackMember,
  startUpstreamGatewayStack,
  TestGateway,
  UpstreamGatewayStack,
} from '@gatehouse/testing/gateway';
import { seedDownloads, seedImage } from '@gatehouse/testing/upstream';

/**
 * The access pipeline of every customer surface (registry, referrers, downloads) through the
 * real gateway (Fastify, passport, PostgreSQL) in front of the Forgejo front: each request's
 * token is verified exactly once, and member state and entitlements are loaded exactly once,
 * whatever the route and whichever guard needs them.
 */
describe('the access pipeline authorises each request once', () => {
  let stack: UpstreamGatewayStack;
  let gw: TestGateway;
  let alice: StackMember;
  let verify: jest.SpyInstance;
  let liveEntitlements: jest.SpyInstance;
  let memberState: jest.SpyInstance;

  beforeAll(async () => {
    stack = await startUpstreamGatewayStack({ patLabel: 'pipeline' });
    gw = stack.gw;
    stack.front.setTokenScopes(stack.pat, ['read:package', 'read:repository']);
    seedDownloads(stack.front);
    alice = await stack.member('once', {
      'acme/app': ['v1.0.0'],
      'releases:acme/tool': ['v1.0.0'],
      'packages:acme/cli': ['1.4.0'],
    });
    verify = jest.spyOn(gw.app.get(RegistryTokenService), 'verify');
    liveEntitlements = jest.spyOn(gw.app.get(EntitlementService), 'liveEntitlements');
    memberState = jest.spyOn(gw.app.get(MemberStateCache), 'get');
  });

  afterAll(async () => {
    jest.restoreAllMocks();
    await stack?.stop();
  });

  /** Fetches with a fresh token, then reports the calls the request itself made. */
  async function counted(
    path: string,
    scopes: string[],
    init: { method?: string; token?: string; basic?: boolean } = {},
  ): Promise<{ status: number; verify: number; entitlements: number; memberState: number }> {
    const token = init.token ?? (await stack.token(alice, scopes));
    verify.mockClear();
    liveEntitlements.mockClear();
    memberState.mockClear();
    const res = await fetch(`${gw.url}${path}`, {
      method: init.method ?? 'GET',
      headers: {
        authorization: init.basic ? alice.basic : `Bearer ${token}`,
        accept: 'application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json',
      },
    });
    await res.arrayBuffer();
    return {
      status: res.status,
      verify: verify.mock.calls.length,
      entitlements: liveEntitlements.mock.calls.length,
      memberState: memberState.mock.calls.length,
    };
  }

  it('verifies the token once and loads member state and entitlements once, on every route', async () => {
    const image = seedImage(stack.seed, 'acme/app', 'v1.0.0');
    const child = image.manifests[0];
    const layer = child.layers[0];
    const repo = ['repository:acme/app:pull'];
    const release = ['release:acme/tool:pull'];
    const cases: Array<[string, string, string[], string?]> = [
      ['ping', '/v2/', []],
      ['catalog', '/v2/_catalog', ['registry:catalog:*']],
      ['tags', '/v2/acme/app/tags/list', repo],
      ['manifest by tag (cold)', '/v2/acme/app/manifests/v1.0.0', repo],
      ['manifest by tag (warm)', '/v2/acme/app/manifests/v1.0.0', repo],
      ['manifest HEAD', '/v2/acme/app/manifests/v1.0.0', repo, 'HEAD'],
      ['child manifest by digest', `/v2/acme/app/manifests/${child.digest}`, repo],
      ['blob (cold)', `/v2/acme/app/blobs/${layer.digest}`, repo],
      ['blob (cached)', `/v2/acme/app/blobs/${layer.digest}`, repo],
      ['blob HEAD', `/v2/acme/app/blobs/${layer.digest}`, repo, 'HEAD'],
      ['referrers', `/v2/acme/app/referrers/${image.digest}`, repo],
      ['referrers of a child', `/v2/acme/app/referrers/${child.digest}`, repo],
      ['release listing', '/downloads/releases/acme/tool', release],
      ['release asset (cold)', '/downloads/releases/acme/tool/v1.0.0/checksums.txt', release],
      ['release asset (cached)', '/downloads/releases/acme/tool/v1.0.0/checksums.txt', release],
      ['release asset HEAD', '/downloads/releases/acme/tool/v1.0.0/checksums.txt', release, 'HEAD'],
      ['latest release asset', '/downloads/releases/acme/tool/latest/checksums.txt', release],
      ['package file', '/downloads/packages/acme/cli/1.4.0/cli.tar.gz', ['package:acme/cli:pull']],
    ];
    for (const [what, path, scopes, method] of cases) {
      expect({ what, ...(await counted(path, scopes, { method })) }).toEqual({
        what,
        status: 200,
        verify: 1,
        entitlements: 1,
        memberState: 1,
      });
    }
  });

  it('loads member state and entitlements once for a Basic download, and verifies no token', async () => {
    const path = '/downloads/releases/acme/tool/v1.0.0/checksums.txt';
    expect(await counted(path, [], { basic: true })).toEqual({
      status: 200,
      verify: 0,
      entitlements: 1,
      memberState: 0,
    });
    expect(await counted('/downloads/releases/acme/tool/v9.0.0/checksums.txt', [], { basic: true })).toEqual({
      status: 404,
      verify: 0,
      entitlements: 1,
      memberState: 0,
    });
  });

  it('verifies once on refusals too, and loads nothing for a token that fails verification', async () => {
    const refused = await counted('/v2/other/secret/manifests/1.0', ['repository:other/secret:pull']);
    expect(refused).toEqual({ status: 404, verify: 1, entitlements: 1, memberState: 1 });
    const tag = await counted('/v2/acme/app/manifests/v9.9.9', ['repository:acme/app:pull']);
    expect(tag).toEqual({ status: 404, verify: 1, entitlements: 1, memberState: 1 });
    const forged = await counted('/v2/acme/app/tags/list', [], { token: 'eyJhbGciOiJFUzI1NiJ9.e30.c2ln' });
    expect(forged).toEqual({ status: 401, verify: 1, entitlements: 0, memberState: 0 });
    const unreachable = await counted(`/v2/acme/app/referrers/sha256:${'ab'.repeat(32)}`, [
      'repository:acme/app:pull',
    ]);
    expect(unreachable).toEqual({ status: 200, verify: 1, entitlements: 1, memberState: 1 });
    const download = '/downloads/releases/other/tool/v1.0.0/checksums.txt';
    const unentitled = await counted(download, ['release:other/tool:pull']);
    expect(unentitled).toEqual({ status: 401, verify: 1, entitlements: 0, memberState: 1 });
    const unscoped = await counted('/downloads/releases/acme/tool', ['repository:acme/app:pull']);
    expect(unscoped).toEqual({ status: 401, verify: 1, entitlements: 0, memberState: 1 });
    const version = await counted('/downloads/packages/acme/cli/2.0.0/cli.tar.gz', ['package:acme/cli:pull']);
    expect(version).toEqual({ status: 404, verify: 1, entitlements: 1, memberState: 1 });

    // The refusals are audited as before: the repository one by the handler, the token by auth.
    await gw.app.get(AuditService).flush(10_000);
    const rows = await gw.app.get(AuditQueryService).find({ username: alice.username, limit: 100 });
    expect(rows.find((r) => r.repository === 'other/secret')).toMatchObject({
      action: 'manifest.get',
      outcome: 'denied',
      reason: 'repository_not_entitled',
      httpStatus: 404,
    });
  });
});
