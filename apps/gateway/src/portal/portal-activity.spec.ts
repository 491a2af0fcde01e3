import { ActivityRow, memberActivity, memberSafeResult } from './portal-activity';

const row = (extra: Partial<ActivityRow>): ActivityRow => ({
  occurredAt: new Date('2026-12-07T00:00:00Z'),
  action: 'manifest.get',
  repository: 'acme/app',
  reference: 'v1.0.0',
  digest: null,
  outcome: 'allowed',
  reason: null,
  httpStatus: 200,
  ...extra,
});

describe("the member's activity", () => {
  it('reads a refused unknown and a refused unentitled thing the same', () => {
    const unknown = memberSafeResult(
      row({ outcome: 'denied', reason: 'tag_unknown_upstream', httpStatus: 404 }),
    );
    const unentitled = memberSafeResult(
      row({ outcome: 'denied', reason: 'tag_not_entitled', httpStatus: 404 }),
    );
    const noRepo = memberSafeResult(
      row({ outcome: 'denied', reason: 'repository_not_entitled', httpStatus: 401 }),
    );
    expect(unknown).toBe('refused: not found, or not granted to you');
    expect(unentitled).toBe(unknown);
    expect(memberSafeResult(row({ outcome: 'denied', reason: 'rate_limited', httpStatus: 429 }))).toMatch(
      /too many/,
    );
    expect(noRepo).not.toContain('repository_not_entitled');
  });

  it("keeps the member's own actions and shows a digest only for what was served", () => {
    const shown = memberActivity([
      row({ digest: `sha256:${'a'.repeat(64)}` }),
      row({
        outcome: 'denied',
        reason: 'digest_not_reachable',
        httpStatus: 404,
        digest: `sha256:${'b'.repeat(64)}`,
      }),
      row({ action: 'admin.entitlement.grant' }),
    ]);
    expect(shown.map((a) => a.what)).toEqual(['pull (manifest)', 'pull (manifest)']);
    expect(shown[0].target).toContain('sha256:aaaa');
    expect(shown[1].target).toBe('acme/app v1.0.0');
  });
});
