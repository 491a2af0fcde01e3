import { compareVersionsNewestFirst, firstDay, versionAdoption } from './audit-analytics';

const at = (iso: string) => new Date(iso);

describe('version adoption', () => {
  it('orders versions newest first: semver by precedence, then other tags', () => {
    expect(['latest', 'v1.10.0', 'v1.2.0', '2.0.0-rc.1', 'v2.0.0'].sort(compareVersionsNewestFirst)).toEqual([
      'v2.0.0',
      '2.0.0-rc.1',
      'v1.10.0',
      'v1.2.0',
      'latest',
    ]);
  });

  it('reports versions in use, the share on the newest three and the median age of the version in use', () => {
    const now = at('2026-03-31T00:00:00Z');
    const row = (username: string, reference: string, first: string, last: string, pulls = 1) => ({
      username,
      reference,
      pulls,
      first: at(first),
      last: at(last),
    });
    const x = versionAdoption(
      'acme/app',
      [
        row('a', 'v1.0.0', '2026-03-01T00:00:00Z', '2026-03-02T00:00:00Z', 3),
        row('a', 'v2.0.0', '2026-03-21T00:00:00Z', '2026-03-30T00:00:00Z'),
        row('b', 'v1.0.0', '2026-03-11T00:00:00Z', '2026-03-29T00:00:00Z'),
        row('c', 'v1.1.0', '2026-03-26T00:00:00Z', '2026-03-26T00:00:00Z'),
        row('d', 'v0.9.0', '2026-03-16T00:00:00Z', '2026-03-16T00:00:00Z'),
      ],
      now,
    );
    expect(x.distinctVersions).toBe(4);
    expect(x.versions.map((v) => v.version)).toEqual(['v2.0.0', 'v1.1.0', 'v1.0.0', 'v0.9.0']);
    expect(x.versions[2]).toEqual({ version: 'v1.0.0', members: 2, pulls: 4 });
    expect(x.members).toEqual([
      { username: 'a', versions: ['v2.0.0', 'v1.0.0'], current: 'v2.0.0' },
      { username: 'b', versions: ['v1.0.0'], current: 'v1.0.0' },
      { username: 'c', versions: ['v1.1.0'], current: 'v1.1.0' },
      { username: 'd', versions: ['v0.9.0'], current: 'v0.9.0' },
    ]);
    // a, b, c are on the newest three; d is not.
    expect(x.shareOnNewestThree).toBe(0.75);
    // Ages of the versions in use (first pulled here): v2.0.0 10 d, v1.0.0 30 d, v1.1.0 5 d, v0.9.0 15 d.
    expect(x.medianVersionAgeDays).toBe(12.5);
  });

  it('has nothing to report without pulls', () => {
    const x = versionAdoption('acme/app', [], new Date());
    expect(x).toMatchObject({ distinctVersions: 0, shareOnNewestThree: null, medianVersionAgeDays: null });
  });

  it('counts whole UTC days, today included', () => {
    expect(firstDay({ days: 1, now: at('2026-03-31T23:59:00Z') })).toBe('2026-03-31');
    expect(firstDay({ days: 30, now: at('2026-03-31T00:01:00Z') })).toBe('2026-03-02');
  });
});
