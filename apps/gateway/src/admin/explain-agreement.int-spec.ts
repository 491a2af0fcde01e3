import { AuditQueryService, AuditService } from '@gatehouse/audit';
import { AccessExplainService } from '@gatehouse/entitlements';
import { AccessKeyService } from '@gatehouse/members';
import { PullThroughService } from '@gatehouse/pull-through';
import { StackMember, startUpstreamGatewayStack, UpstreamGatewayStack } from '@gatehouse/testing/gateway';
import { seedDownloads } from '@gatehouse/testing/upstream';

interface Case {
  /** What explain is asked: the target as typed and the tag. */
  target: string;
  tag: string;
  /** The member's request for the same thing. */
  request: (who: StackMember) => Promise<{ url: string; authorization: string }>;
  /** The audit reason the server writes (and explain names, when it refuses). */
  reason: string;
}

/**
 * `gatehouse explain` (and the admin API's) and the server agree on every answer, for every kind:
 * for each refusal the status and code the member's client got are the ones explain says the
 * member sees, and the audit row's reason is explain's reason; for a request explain allows that
 * still fails (the tag, release or version does not exist upstream, or the repository is not
 * visible there) the answer is the one explain says a missing one gets.
 */
describe('explain and the server agree on the answer, for every kind', () => {
  let stack: UpstreamGatewayStack;
  let member: StackMember;
  let revoked: StackMember;

  const basic = (who: StackMember) => who.basic;
  const bearer = async (who: StackMember, repository: string) => {
    const res = await fetch(
      `${stack.gw.url}/auth/token?service=${stack.gw.host}&scope=repository:${repository}:pull`,
      { headers: { authorization: who.basic } },
    );
    return res.status === 200
      ? `Bearer ${((await res.json()) as { token: string }).token}`
      : `Basic ${Buffer.from(`${who.username}:${who.key}`).toString('base64')}`;
  };
  const image = (repository: string, tag: string) => async (who: StackMember) => ({
    url: `${stack.gw.url}/v2/${repository}/manifests/${tag}`,
    authorization: await bearer(who, repository),
  });
  const release = (repo: string, tag: string) => async (who: StackMember) => ({
    url: `${stack.gw.url}/downloads/releases/acme/${repo}/${tag}/tool-linux-amd64`,
    authorization: basic(who),
  });
  const pkg = (name: string, version: string) => async (who: StackMember) => ({
    url: `${stack.gw.url}/downloads/packages/acme/${name}/${version}/cli.tar.gz`,
    authorization: basic(who),
  });

  const cases: Record<string, Case> = {
    'image, repository not entitled': {
      target: 'acme/tool',
      tag: 'v1.0.0',
      request: image('acme/tool', 'v1.0.0'),
      reason: 'repository_not_entitled',
    },
    'image, tag not entitled': {
      target: 'acme/app',
      tag: 'v1.1.0',
      request: image('acme/app', 'v1.1.0'),
      reason: 'tag_not_entitled',
    },
    'image, admitted tag missing upstream': {
      target: 'acme/app',
      tag: 'v9.9.9',
      request: image('acme/app', 'v9.9.9'),
      reason: 'tag_unknown_upstream',
    },
    'release, repository not entitled': {
      target: 'releases:acme/app',
      tag: 'v1.0.0',
      request: release('app', 'v1.0.0'),
      reason: 'repository_not_entitled',
    },
    'release, tag not entitled': {
      target: 'releases:acme/tool',
      tag: 'v2.0.0',
      request: release('tool', 'v2.0.0'),
      reason: 'tag_not_entitled',
    },
    'release, admitted tag missing upstream': {
      target: 'releases:acme/tool',
      tag: 'v1.9.0',
      request: release('tool', 'v1.9.0'),
      reason: 'release_unknown',
    },
    'release, repository not visible upstream': {
      target: 'releases:acme/ghost',
      tag: 'v1.0.0',
      request: release('ghost', 'v1.0.0'),
      reason: 'repository_unknown_upstream',
    },
    'package, not entitled': {
      target: 'packages:acme/other',
      tag: '1.0.0',
      request: pkg('other', '1.0.0'),
      reason: 'repository_not_entitled',
    },
    'package, version not entitled': {
      target: 'packages:acme/cli',
      tag: '2.0.0',
      request: pkg('cli', '2.0.0'),
      reason: 'tag_not_entitled',
    },
    'package, admitted version missing upstream': {
      target: 'packages:acme/cli',
      tag: '1.4.9',
      request: pkg('cli', '1.4.9'),
      reason: 'asset_unknown',
    },
  };

  beforeAll(async () => {
    stack = await startUpstreamGatewayStack({ patLabel: 'explain-agreement' });
    stack.front.setTokenScopes(stack.pat, ['read:package', 'read:repository']);
    seedDownloads(stack.front);
    const grants = {
      'acme/app': ['v1.0.0', 'v9.*'],
      'releases:acme/tool': ['semver:^1.2'],
      'releases:acme/ghost': ['*'],
      'packages:acme/cli': ['1.4.*'],
    };
    member = await stack.member('agree', grants);
    revoked = await stack.member('revoked', grants);
    const keys = stack.gw.app.get(AccessKeyService);
    for (const k of await keys.list(revoked.username)) await keys.revoke(k.id);
  });
  afterAll(() => stack?.stop());

  /** The server's status, error code and audit reason for one request. */
  async function serve(who: StackMember, c: Case) {
    const { url, authorization } = await c.request(who);
    const res = await fetch(url, { headers: { authorization } });
    const requestId = res.headers.get('x-request-id') ?? 'none';
    const body = (await res.json().catch(() => ({}))) as { errors?: Array<{ code: string }> };
    await stack.gw.app.get(AuditService).flush();
    const rows = await stack.gw.app.get(AuditQueryService).find({ requestId });
    return { status: res.status, code: body.errors?.[0]?.code, reason: rows[0]?.reason ?? null };
  }

  const explain = (who: StackMember, c: Case) =>
    stack.gw.app
      .get(AccessExplainService)
      .explain(who.username, c.target, c.tag, stack.gw.app.get(PullThroughService));

  it.each(Object.keys(cases))('%s', async (name) => {
    const c = cases[name];
    const served = await serve(member, c);
    const { verdict } = await explain(member, c);
    expect(served.reason).toBe(c.reason);
    if (verdict.allowed) {
      // Allowed by the rules, missing upstream: the answer explain says a missing one gets.
      expect({ status: served.status, code: served.code }).toEqual(verdict.ifMissing);
    } else {
      expect({ status: served.status, code: served.code }).toEqual(verdict.answer);
      expect(verdict.reason).toBe(served.reason);
      expect(verdict.memberSees).toContain(`${served.status} ${served.code}`);
    }
  });

  it.each([
    ['image', 'acme/app', 'v1.0.0', image('acme/app', 'v1.0.0')],
    ['release', 'releases:acme/tool', 'v1.2.0', release('tool', 'v1.2.0')],
    ['package', 'packages:acme/cli', '1.4.0', pkg('cli', '1.4.0')],
  ] as const)('%s, revoked key: 401 UNAUTHORIZED on both sides', async (_kind, target, tag, request) => {
    const c: Case = { target, tag, request, reason: 'key_revoked' };
    const { verdict } = await explain(revoked, c);
    expect(verdict).toMatchObject({ allowed: false, reason: 'key_revoked' });
    const { url, authorization } = await request(revoked);
    // Images are refused at the token endpoint (a login); downloads on the request itself.
    const res = target.includes(':')
      ? await fetch(url, { headers: { authorization } })
      : await fetch(`${stack.gw.url}/auth/token?service=${stack.gw.host}`, { headers: { authorization } });
    const body = (await res.json()) as { errors?: Array<{ code: string }> };
    expect({ status: res.status, code: body.errors?.[0]?.code }).toEqual(verdict.answer);
    expect(verdict.memberSees).toContain(`${res.status} ${body.errors?.[0]?.code}`);
  });
});
