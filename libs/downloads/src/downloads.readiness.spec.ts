import type { GatewayConfig } from '@gatehouse/config';
import type { EntitlementService } from '@gatehouse/entitlements';
import { ManualClock } from '@gatehouse/observability';
import { UpstreamAuthError, UpstreamRegistryClient } from '@gatehouse/upstream';
import { DownloadsReadiness } from './downloads.readiness';

/** The entitled release repositories, newest grant first. */
class FakeEntitlements {
  targets: string[] = [];
  async someTargets(): Promise<string[]> {
    return this.targets;
  }
}

/** The upstream's releases API: the repositories it shows, or a refusal of the token. */
class FakeReleases {
  visible = new Set<string>();
  refusal: Error | null = null;
  asked: string[] = [];
  async listReleases(owner: string, repo: string) {
    this.asked.push(`${owner}/${repo}`);
    if (this.refusal) throw this.refusal;
    return this.visible.has(`${owner}/${repo}`)
      ? { found: true as const, releases: [] }
      : { found: false as const, status: 404 };
  }
}

function setup(kind: 'forgejo' | 'gatehouse' = 'forgejo') {
  const entitlements = new FakeEntitlements();
  const releases = new FakeReleases();
  const readiness = new DownloadsReadiness(
    { upstream: { enabled: true, username: 'site-b' } } as GatewayConfig,
    entitlements as unknown as EntitlementService,
    { downloads: releases, kind } as unknown as UpstreamRegistryClient,
    new ManualClock(),
  );
  return { entitlements, releases, readiness };
}

describe('DownloadsReadiness', () => {
  it('is up without releases entitlements, asking nothing upstream', async () => {
    const { readiness, releases } = setup();
    expect(await readiness.check()).toMatchObject({ ok: true, message: expect.stringMatching(/not needed/) });
    expect(releases.asked).toEqual([]);
  });

  it('is up once a release list is read, naming the entitled repositories it could not see', async () => {
    const { readiness, entitlements, releases } = setup();
    entitlements.targets = ['acme/ghost', 'acme/tool'];
    releases.visible.add('acme/tool');
    const status = await readiness.check({ force: true });
    expect(status).toMatchObject({ ok: true });
    expect(status.message).toBe(
      'the service token can list releases (read acme/tool); not visible upstream: acme/ghost',
    );
  });

  it('is not up when no entitled release repository is visible upstream, and says the fix', async () => {
    const { readiness, entitlements } = setup();
    entitlements.targets = ['acme/tool'];
    const status = await readiness.check({ force: true });
    expect(status).toMatchObject({ ok: false, reason: 'repository_not_visible' });
    expect(status.message).toMatch(/no entitled release repository is visible upstream \(acme\/tool\)/);
    expect(status.message).toMatch(/Fix: .*gatehouse revoke <member> releases:<owner>\/<repo>/);
  });

  it("through an upstream Gatehouse, names its member and `gatehouse explain`, not Forgejo's token", async () => {
    const { readiness, entitlements, releases } = setup('gatehouse');
    expect((await readiness.check()).message).toBe('no releases entitlements: nothing to check upstream');
    entitlements.targets = ['acme/ghost', 'acme/tool'];
    releases.visible.add('acme/tool');
    expect((await readiness.check({ force: true })).message).toBe(
      "the upstream Gatehouse's member site-b can list releases (read acme/tool); not visible upstream: acme/ghost",
    );
    releases.visible.clear();
    const status = await readiness.check({ force: true });
    expect(status).toMatchObject({ ok: false, reason: 'repository_not_visible' });
    expect(status.message).toContain(
      'Fix: ask the upstream operator to grant site-b releases:<owner>/<repo> there ' +
        '(`gatehouse explain site-b releases:<owner>/<repo>@<tag>` there shows why)',
    );
    expect(status.message).not.toMatch(/service token|read:repository/);
  });

  it('reports the token refusal the upstream gives', async () => {
    const { readiness, entitlements, releases } = setup();
    entitlements.targets = ['acme/tool'];
    releases.refusal = new UpstreamAuthError('token_missing_scope', 'the token lacks read:repository');
    expect(await readiness.check({ force: true })).toMatchObject({
      ok: false,
      reason: 'token_missing_scope',
    });
  });
});
