import type { Repository } from 'typeorm';
import type { GatewayConfig } from '@gatehouse/config';
import type { Member, MemberService } from '@gatehouse/members';
import { ManualClock } from '@gatehouse/observability';
import type { EntitlementKind } from '@gatehouse/oci';
import type { Entitlement } from './entitlement.entity';
import { EntitlementService } from './entitlement.service';
import type { Reachability } from './tag-admission';

const HEX = 'a'.repeat(64);
const SUBJECT = `sha256:${HEX}`;

/** The table: rows in memory, with the few TypeORM calls the service makes, each counted. */
class FakeEntitlementRepository {
  rows: Entitlement[] = [];
  finds = 0;
  notified: string[] = [];

  create(fields: Partial<Entitlement>): Entitlement {
    return { id: `e-${this.rows.length + 1}`, expiresAt: null, note: null, ...fields } as Entitlement;
  }
  async save(e: Entitlement): Promise<Entitlement> {
    this.rows = [...this.rows.filter((r) => r.id !== e.id), e];
    return e;
  }
  async find(options: { where?: Partial<Entitlement> }): Promise<Entitlement[]> {
    this.finds++;
    return this.rows.filter((r) => this.matches(r, options.where ?? {}));
  }
  async findOne(options: { where: Partial<Entitlement> }): Promise<Entitlement | null> {
    return this.rows.find((r) => this.matches(r, options.where)) ?? null;
  }
  async delete(where: { id: string }): Promise<void> {
    this.rows = this.rows.filter((r) => r.id !== where.id);
  }
  async query(_sql: string, params: unknown[]): Promise<void> {
    this.notified.push(String(params[1]));
  }
  private matches(row: Entitlement, where: Partial<Entitlement>): boolean {
    return Object.entries(where).every(([k, v]) => (row as unknown as Record<string, unknown>)[k] === v);
  }
}

class FakeMembers {
  readonly alice = { id: 'm-1', username: 'alice', status: 'active' } as Member;
  async get(username: string): Promise<Member> {
    if (username !== 'alice') throw new Error(`no member named "${username}"`);
    return this.alice;
  }
}

/** Reachability as the pull path answers it: a fixed tag → digest table, with what was asked. */
class FakeReachability implements Reachability {
  asked: string[] = [];
  constructor(private readonly tags: Record<string, string>) {}
  async findReachingTag(
    _name: string,
    digest: string,
    admits: (tag: string) => boolean | Promise<boolean>,
  ): Promise<{ tag: string; size: number } | null> {
    for (const [tag, d] of Object.entries(this.tags)) {
      if (!(await admits(tag))) continue;
      this.asked.push(tag);
      if (d === digest) return { tag, size: 1 };
    }
    return null;
  }
}

function setup(caseInsensitive = true, outageGraceSeconds = 0) {
  const repo = new FakeEntitlementRepository();
  const members = new FakeMembers();
  const clock = new ManualClock(Date.UTC(2026, 2, 1));
  const config = {
    auth: { stateCacheSeconds: 5, outageGraceSeconds },
    upstream: { tagsCaseInsensitive: caseInsensitive },
  } as GatewayConfig;
  const service = new EntitlementService(
    repo as unknown as Repository<Entitlement>,
    members as unknown as MemberService,
    clock,
    config,
  );
  return { repo, members, clock, service };
}

const row = (kind: EntitlementKind, repository: string, tagRules: string[]) =>
  ({ kind, repository, tagRules }) as Entitlement;

describe('EntitlementService', () => {
  it('grants, replaces and revokes, announcing each change to the other replicas', async () => {
    const { repo, service } = setup();
    const first = await service.grant('alice', 'releases:acme/tool', ['semver:^1.2', 'semver:^1.2']);
    expect(first).toMatchObject({
      created: true,
      entitlement: { kind: 'releases', tagRules: ['semver:^1.2'] },
    });
    const again = await service.grant('alice', 'releases:acme/tool', ['*']);
    expect(again).toMatchObject({ created: false, entitlement: { tagRules: ['*'] } });
    expect(repo.rows).toHaveLength(1);
    await service.revoke('alice', 'releases:acme/tool');
    expect(repo.rows).toHaveLength(0);
    expect(repo.notified).toEqual(['m-1', 'm-1', 'm-1']);
  });

  it('refuses a bad rule and a past expiry with their codes', async () => {
    const { service, clock } = setup();
    await expect(service.grant('alice', 'acme/app', ['semver:banana'])).rejects.toMatchObject({
      code: 'tag_rule_invalid',
    });
    await expect(
      service.grant('alice', 'acme/app', ['*'], { expiresAt: new Date(clock.now() - 1) }),
    ).rejects.toMatchObject({ code: 'expiry_invalid' });
  });

  it('caches the live list for the configured time and drops it on a grant', async () => {
    const { repo, service, clock } = setup();
    await service.grant('alice', 'acme/app', ['v1.*']);
    await service.liveEntitlements('m-1');
    await service.liveEntitlements('m-1');
    expect(repo.finds).toBe(1);
    clock.advance(5_000);
    await service.liveEntitlements('m-1');
    expect(repo.finds).toBe(2);
    await service.grant('alice', 'acme/other', ['*']);
    expect((await service.liveEntitlements('m-1')).map((e) => e.repository)).toEqual([
      'acme/app',
      'acme/other',
    ]);
    expect(repo.finds).toBe(3);
  });

  it('answers the list checked within the outage grace while the database is away, and no longer', async () => {
    const { repo, service, clock } = setup(true, 60);
    await service.grant('alice', 'acme/app', ['v1.*']);
    await service.liveEntitlements('m-1');
    const find = repo.find.bind(repo);
    repo.find = () =>
      Promise.reject(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }));
    clock.advance(5_000 + 60_000);
    expect((await service.liveEntitlements('m-1')).map((e) => e.repository)).toEqual(['acme/app']);
    clock.advance(1);
    await expect(service.liveEntitlements('m-1')).rejects.toThrow('ECONNREFUSED');
    repo.find = () => Promise.reject(new Error('syntax error at or near "x"'));
    await expect(service.liveEntitlements('m-1')).rejects.toThrow('syntax error');
    repo.find = find;
    expect(await service.liveEntitlements('m-1')).toHaveLength(1);
  });

  it('keeps the kinds apart: a releases grant opens no image repository of the same name', async () => {
    const { service } = setup();
    await service.grant('alice', 'releases:acme/tool', ['*']);
    expect(await service.liveEntitlement('m-1', 'acme/tool')).toBeNull();
    expect(await service.liveEntitlement('m-1', 'acme/tool', 'releases')).not.toBeNull();
  });

  it('judges image tags in the upstream form and release tags exactly', () => {
    const { service } = setup();
    expect(service.tagAllowed(row('image', 'acme/app', ['v1.0']), 'V1.0')).toMatchObject({ tag: 'v1.0' });
    expect(service.tagAllowed(row('releases', 'acme/tool', ['v1.0']), 'V1.0')).toBeNull();
    const sensitive = setup(false).service;
    expect(sensitive.tagAllowed(row('image', 'acme/app', ['v1.0']), 'V1.0')).toBeNull();
  });

  it('lists for the grant note exactly the rules the matcher folds, semver ranges included', () => {
    const { service } = setup();
    const rules = ['V1.0', 'v2.*', 'semver:>=1.0.0-RC.1', 'semver:^1.2', '*', 'Beta-[A-Z]'];
    expect(service.caseFoldedRules(row('image', 'acme/app', rules))).toEqual([
      'V1.0',
      'semver:>=1.0.0-RC.1',
      'Beta-[A-Z]',
    ]);
    // Whatever the note lists, the matcher treats as its lower-case form.
    const e = row('image', 'acme/app', ['semver:>=1.0.0-RC.1']);
    expect(service.tagAllowed(e, 'v1.0.0-rc.2')).not.toBeNull();
    expect(service.caseFoldedRules(row('releases', 'acme/tool', rules))).toEqual([]);
  });

  it('admits an artifact tag through a reachable subject, in any spelling, and asks nothing for others', async () => {
    const { service } = setup();
    const e = row('image', 'acme/app', ['v1.0.0']);
    const reach = new FakeReachability({ 'v1.0.0': SUBJECT, 'v2.0.0': 'sha256:' + 'b'.repeat(64) });
    const sig = `SHA256-${HEX.toUpperCase()}.SIG`;
    expect(await service.admitTag(e, sig, reach)).toMatchObject({
      via: 'subject',
      tag: `sha256-${HEX}.sig`,
      subjectTag: 'v1.0.0',
      rule: 'v1.0.0',
    });
    expect(reach.asked).toEqual(['v1.0.0']);
    expect(await service.admitTag(e, 'v2.0.0', reach)).toBeNull();
    expect(
      await service.admitTag(row('releases', 'acme/app', ['v1.0.0']), `sha256-${HEX}.sig`, reach),
    ).toBeNull();
  });

  it('finds a digest reachable through an artifact tag of an admitted subject', async () => {
    const { service } = setup();
    const sigDigest = 'sha256:' + 'c'.repeat(64);
    const reach = new FakeReachability({ 'v1.0.0': SUBJECT, [`sha256-${HEX}.sig`]: sigDigest });
    expect(await service.findReachingTag(row('image', 'acme/app', ['v1.0.0']), sigDigest, reach)).toEqual({
      tag: `sha256-${HEX}.sig`,
      size: 1,
      subjectTag: 'v1.0.0',
    });
    expect(await service.findReachingTag(row('image', 'acme/app', ['v9']), sigDigest, reach)).toBeNull();
  });

  it('explains with the same decisions: expired, tag refused, subject unchecked without the upstream', async () => {
    const { service, clock } = setup();
    await service.grant('alice', 'acme/app', ['v1.0.0'], { expiresAt: new Date(clock.now() + 1_000) });
    expect(await service.explain('m-1', 'acme/app', 'V1.0.0')).toMatchObject({
      allowed: true,
      match: { tag: 'v1.0.0' },
    });
    expect(await service.explain('m-1', 'acme/app', 'v1.1.0')).toMatchObject({ reason: 'tag_not_entitled' });
    expect(await service.explain('m-1', 'acme/app', `sha256-${HEX}.sig`)).toMatchObject({
      reason: 'subject_not_reachable',
      artifact: { subject: SUBJECT, kind: 'signature', checked: false },
    });
    expect(await service.explain('m-1', 'acme/other')).toMatchObject({ reason: 'repository_not_entitled' });
    clock.advance(1_000);
    expect(await service.explain('m-1', 'acme/app', 'v1.0.0')).toMatchObject({
      reason: 'entitlement_expired',
    });
  });
});
