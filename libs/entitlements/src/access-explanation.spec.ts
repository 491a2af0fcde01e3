import type { AccessKey, Member } from '@gatehouse/members';
import { FORGEJO_TAGS } from '@gatehouse/oci';
import { AccessExplanationInput, explainAccess, ExplainReason } from './access-explanation';
import type { Entitlement } from './entitlement.entity';
import type { EntitlementExplanation } from './entitlement.service';
import { matchTagRules } from './tag-rule.util';

const now = new Date('2026-03-01T12:00:00.000Z');
const yesterday = new Date('2026-02-28T12:00:00.000Z');
const nextYear = new Date('2027-03-01T12:00:00.000Z');

const alice = { id: 'm-1', username: 'alice', status: 'active', disabledAt: null } as Member;
const disabled = { ...alice, status: 'disabled', disabledAt: yesterday } as Member;

function key(prefix: string, fields: Partial<AccessKey> = {}): AccessKey {
  return { prefix, name: null, revokedAt: null, expiresAt: null, ...fields } as AccessKey;
}
const active = key('ghk_Active01', { name: 'laptop' });
const revoked = key('ghk_Revoked1', { revokedAt: yesterday });
const expired = key('ghk_Expired1', { expiresAt: yesterday });

const rules = ['v1.*', 'semver:>=2.0.0 <3.0.0'];
const entitlement = (fields: Partial<Entitlement> = {}) =>
  ({ repository: 'acme/app', tagRules: rules, expiresAt: null, ...fields }) as Entitlement;
const admits = (tag: string): EntitlementExplanation => ({
  allowed: true,
  entitlement: entitlement(),
  match: matchTagRules(rules, tag, FORGEJO_TAGS),
});
const refused = (
  reason: 'repository_not_entitled' | 'entitlement_expired' | 'tag_not_entitled',
  e: Entitlement | null,
): EntitlementExplanation => ({ allowed: false, reason, entitlement: e });

const base: AccessExplanationInput = {
  memberRef: 'alice',
  repository: 'acme/app',
  tag: 'v1.4.2',
  member: alice,
  keys: [active],
  entitlement: admits('v1.4.2'),
  now,
};

describe('explainAccess', () => {
  const cases: Array<{
    reason: ExplainReason | null;
    input: Partial<AccessExplanationInput>;
    failing: Array<'member' | 'access_keys' | 'entitlement'>;
    detail: string;
    memberSees: RegExp;
    fix: string | null;
  }> = [
    {
      reason: null,
      input: {},
      failing: [],
      detail: 'entitlement to acme/app admits v1.4.2 by rule "v1.*" (glob); no expiry',
      memberSees: /^docker pull of acme\/app:v1\.4\.2 is served$/,
      fix: null,
    },
    {
      reason: 'member_unknown',
      input: { memberRef: 'zoe', member: null, keys: [], entitlement: null },
      failing: ['member'],
      detail: 'no member named "zoe" exists',
      memberSees: /401 UNAUTHORIZED .*bad_credentials/,
      fix: 'check the spelling (gatehouse member list), or create the member: gatehouse member create zoe',
    },
    {
      reason: 'member_disabled',
      input: { member: disabled },
      failing: ['member'],
      detail: 'member alice is disabled since 2026-02-28T12:00:00.000Z',
      memberSees: /401 UNAUTHORIZED/,
      fix: 'gatehouse member enable alice',
    },
    {
      reason: 'no_access_key',
      input: { keys: [] },
      failing: ['access_keys'],
      detail: 'the member has no access key',
      memberSees: /401 UNAUTHORIZED/,
      fix: 'give them a new key: gatehouse key create alice',
    },
    {
      reason: 'key_revoked',
      input: { keys: [revoked] },
      failing: ['access_keys'],
      detail: 'no usable access key: ghk_Revoked1 revoked at 2026-02-28T12:00:00.000Z',
      memberSees: /401 UNAUTHORIZED/,
      fix: 'give them a new key: gatehouse key create alice',
    },
    {
      reason: 'key_expired',
      input: { keys: [expired] },
      failing: ['access_keys'],
      detail: 'no usable access key: ghk_Expired1 expired at 2026-02-28T12:00:00.000Z',
      memberSees: /401 UNAUTHORIZED/,
      fix: 'give them a new key: gatehouse key create alice',
    },
    {
      reason: 'no_usable_key',
      input: { keys: [revoked, expired] },
      failing: ['access_keys'],
      detail:
        'no usable access key: ghk_Revoked1 revoked at 2026-02-28T12:00:00.000Z; ghk_Expired1 expired at 2026-02-28T12:00:00.000Z',
      memberSees: /401 UNAUTHORIZED/,
      fix: 'give them a new key: gatehouse key create alice',
    },
    {
      reason: 'repository_not_entitled',
      input: { entitlement: refused('repository_not_entitled', null) },
      failing: ['entitlement'],
      detail: 'no entitlement to acme/app',
      memberSees: /^docker pull acme\/app:v1\.4\.2 fails: 404 NAME_UNKNOWN/,
      fix: 'gatehouse grant alice acme/app --tags v1.4.2',
    },
    {
      reason: 'entitlement_expired',
      input: { entitlement: refused('entitlement_expired', entitlement({ expiresAt: yesterday })) },
      failing: ['entitlement'],
      detail:
        'entitlement to acme/app expired at 2026-02-28T12:00:00.000Z (rules: v1.*, semver:>=2.0.0 <3.0.0)',
      memberSees: /404 NAME_UNKNOWN/,
      fix: "renew it: gatehouse grant alice acme/app --tags 'v1.*,semver:>=2.0.0 <3.0.0' --expires <date>",
    },
    {
      reason: 'tag_not_entitled',
      input: { tag: 'v3.0.0', entitlement: refused('tag_not_entitled', entitlement()) },
      failing: ['entitlement'],
      detail: 'entitlement to acme/app does not admit v3.0.0: its rules are v1.*, semver:>=2.0.0 <3.0.0',
      memberSees: /^docker pull acme\/app:v3\.0\.0 fails: 404 MANIFEST_UNKNOWN/,
      fix: "widen the rules: gatehouse grant alice acme/app --tags 'v1.*,semver:>=2.0.0 <3.0.0,v3.0.0'",
    },
  ];

  it.each(cases)('$reason', ({ reason, input, failing, detail, memberSees, fix }) => {
    const verdict = explainAccess({ ...base, ...input });
    expect(verdict).toMatchObject({ allowed: reason === null, reason, fix });
    expect(verdict.memberSees).toMatch(memberSees);
    expect(verdict.checks.filter((c) => !c.ok).map((c) => c.check)).toEqual(failing);
    const deciding = verdict.checks.find((c) => !c.ok) ?? verdict.checks[verdict.checks.length - 1];
    expect(deciding.detail).toBe(detail);
  });

  it('names the canonical form a case variant was judged as', () => {
    const verdict = explainAccess({ ...base, tag: 'V1.4.2', entitlement: admits('V1.4.2') });
    expect(verdict.allowed).toBe(true);
    expect(verdict.checks[2].detail).toBe(
      'entitlement to acme/app admits V1.4.2 (judged as v1.4.2, the tag the upstream serves for it) by rule "v1.*" (glob); no expiry',
    );
  });

  it('makes every check and names the first failure, with every fix in order', () => {
    const verdict = explainAccess({
      ...base,
      member: disabled,
      keys: [],
      entitlement: refused('repository_not_entitled', null),
    });
    expect(verdict.reason).toBe('member_disabled');
    expect(verdict.checks.map((c) => [c.check, c.ok])).toEqual([
      ['member', false],
      ['access_keys', false],
      ['entitlement', false],
    ]);
    expect(verdict.fix).toBe(
      'gatehouse member enable alice; then give them a new key: gatehouse key create alice; then gatehouse grant alice acme/app --tags v1.4.2',
    );
  });

  it('lists usable keys only when there are some, with their expiry', () => {
    const later = key('ghk_Later001', { expiresAt: nextYear });
    const verdict = explainAccess({ ...base, keys: [revoked, active, later] });
    expect(verdict.checks[1]).toEqual({
      check: 'access_keys',
      ok: true,
      detail:
        '2 usable access keys: ghk_Active01 "laptop" active; ghk_Later001 active until 2027-03-01T12:00:00.000Z',
    });
  });

  it('without a tag, says which tags the rules admit', () => {
    const allowed = explainAccess({
      ...base,
      tag: null,
      entitlement: { allowed: true, entitlement: entitlement({ expiresAt: nextYear }), match: null },
    });
    expect(allowed).toMatchObject({ allowed: true, reason: null, fix: null });
    expect(allowed.checks[2].detail).toBe(
      'entitlement to acme/app admits the tags its rules match: v1.*, semver:>=2.0.0 <3.0.0; expires 2027-03-01T12:00:00.000Z',
    );
    expect(allowed.memberSees).toBe('docker pull of acme/app is served for the tags its rules admit');

    const none = explainAccess({
      ...base,
      tag: undefined,
      entitlement: refused('repository_not_entitled', null),
    });
    expect(none.fix).toBe('gatehouse grant alice acme/app --tags <tags>');
    expect(none.memberSees).toMatch(/^docker pull acme\/app fails: 404 NAME_UNKNOWN/);
  });
});

describe('explainAccess of artifact tags', () => {
  const hex = 'ab'.repeat(32);
  const sig = `sha256-${hex}.sig`;
  const detail = (v: ReturnType<typeof explainAccess>) =>
    v.checks.find((c) => c.check === 'entitlement')!.detail;

  it('names what an admitted artifact tag is: "signature of v1.4.2"', () => {
    const v = explainAccess({
      ...base,
      tag: sig,
      entitlement: {
        allowed: true,
        entitlement: entitlement(),
        match: null,
        admission: {
          via: 'subject',
          tag: sig,
          artifact: { tag: sig, subject: `sha256:${hex}`, kind: 'signature' },
          subjectTag: 'v1.4.2',
          rule: 'v1.*',
        },
      },
    });
    expect(v.allowed).toBe(true);
    expect(detail(v)).toBe(
      `entitlement to acme/app admits ${sig}: the signature of v1.4.2 (sha256:${hex} is reachable from v1.4.2, admitted by rule "v1.*"); no expiry`,
    );
  });

  it.each([
    [true, 'which no tag the rules admit (v1.*, semver:>=2.0.0 <3.0.0) reaches'],
    [false, 'not checked here'],
  ])('refuses an artifact of an unreachable subject as an unknown tag (checked: %s)', (checked, says) => {
    const v = explainAccess({
      ...base,
      tag: sig,
      entitlement: {
        allowed: false,
        reason: 'subject_not_reachable',
        entitlement: entitlement(),
        artifact: { subject: `sha256:${hex}`, kind: 'signature', checked },
      },
    });
    expect([v.allowed, v.reason]).toEqual([false, 'subject_not_reachable']);
    expect(detail(v)).toContain(`the signature of sha256:${hex}`);
    expect(detail(v)).toContain(says);
    expect(v.memberSees).toContain('404 MANIFEST_UNKNOWN');
  });
});
