import { matchTagRules, parseTagRule, parseTagRules, splitTagRules, TagRuleError } from './tag-rule.util';

describe('tag rules', () => {
  describe('matching', () => {
    const cases: Array<[rule: string, tag: string, expected: boolean]> = [
      // *
      ['*', 'latest', true],
      ['*', 'v1.2.3', true],
      ['*', '.hidden-looking', true],
      // exact: case-sensitive equality
      ['v1.2.3', 'v1.2.3', true],
      ['v1.2.3', 'v1.2.4', false],
      ['v1.2.3', 'V1.2.3', false],
      ['latest', 'latest', true],
      ['latest', 'latest2', false],
      // glob: `.` is literal, `*` spans the rest, dotfiles too
      ['v1.2.*', 'v1.2.3', true],
      ['v1.2.*', 'v1.2.10', true],
      ['v1.2.*', 'v1.20', false],
      ['v1.2.*', 'v1.3.0', false],
      ['v1.2.*', 'v1.2', false],
      ['*-rc*', '1.0.0-rc1', true],
      ['*-rc*', '1.0.0', false],
      ['v1.{2,3}.*', 'v1.3.7', true],
      ['v1.{2,3}.*', 'v1.4.0', false],
      ['v?', 'v1', true],
      ['v?', 'v10', false],
      ['[ab]-*', 'b-x', true],
      ['[ab]-*', 'c-x', false],
      // semver: a leading v is ignored
      ['semver:>=1.2.0 <2.0.0', '1.2.0', true],
      ['semver:>=1.2.0 <2.0.0', 'v1.2.0', true],
      ['semver:>=1.2.0 <2.0.0', 'V1.9.9', true],
      ['semver:>=1.2.0 <2.0.0', '1.1.9', false],
      ['semver:>=1.2.0 <2.0.0', '2.0.0', false],
      ['semver:^1.2', 'v1.5.0', true],
      ['semver:~1.4.0', '1.4.9', true],
      ['semver:~1.4.0', '1.5.0', false],
      // prereleases only when the range opts in
      ['semver:>=1.2.0 <2.0.0', '1.3.0-beta.1', false],
      ['semver:>=1.3.0-0 <2.0.0', '1.3.0-beta.1', true],
      ['semver:>=1.3.0-beta.0 <2.0.0', '1.3.0-beta.1', true],
      // non-semver tags never match a semver rule
      ['semver:*', 'latest', false],
      ['semver:*', '1.2', false],
      ['semver:>=1.0.0', 'v1', false],
      ['semver:>=1.0.0', 'vv1.0.0', false],
      ['semver:*', '1.0.0', true],
    ];
    it.each(cases)('%s vs %s → %s', (rule, tag, expected) => {
      expect(parseTagRule(rule).matches(tag)).toBe(expected);
      expect(matchTagRules([rule], tag) !== null).toBe(expected);
    });
  });

  it('reports which rule matched, first match wins', () => {
    expect(matchTagRules(['v2.*', 'semver:^1.0.0', '*'], 'v1.4.0')).toEqual({
      rule: 'semver:^1.0.0',
      kind: 'semver',
    });
    expect(matchTagRules(['v1.2.3'], 'v1.2.3')).toEqual({ rule: 'v1.2.3', kind: 'exact' });
    expect(matchTagRules(['v1.*'], 'v2.0')).toBeNull();
    expect(matchTagRules([], 'v1')).toBeNull();
  });

  it('ignores a corrupt stored rule instead of admitting everything', () => {
    expect(matchTagRules(['semver:not a range'], '1.0.0')).toBeNull();
    expect(matchTagRules(['semver:not a range', 'v1'], 'v1')).toEqual({ rule: 'v1', kind: 'exact' });
  });

  describe('kinds', () => {
    it.each([
      ['*', 'any'],
      ['v1.2.3', 'exact'],
      ['v1.2.*', 'glob'],
      ['semver:>=1.2.0 <2.0.0', 'semver'],
      ['SEMVER:^1', 'semver'],
    ])('%s is %s', (rule, kind) => expect(parseTagRule(rule).kind).toBe(kind));

    it('normalises the stored text', () => {
      expect(parseTagRule('  semver:  >=1.2.0 <2.0.0 ').rule).toBe('semver:>=1.2.0 <2.0.0');
      expect(parseTagRule(' v1 ').rule).toBe('v1');
    });
  });

  describe('invalid rules are refused with a clear message', () => {
    it.each([
      ['', /empty/],
      ['   ', /empty/],
      ['semver:', /not a valid semver range/],
      ['semver:banana', /not a valid semver range/],
      ['v1/2', /not a valid tag/],
      ['.hidden', /not a valid tag/],
      ['-x', /not a valid tag/],
      ['a'.repeat(129), /not a valid tag/],
      ['v1.[2', /not a valid glob/],
      ['v1/*', /not a valid glob/],
      ['+(a|b)*', /not a valid glob/],
      ['!v1*', /not a valid glob/],
      ['tag with space', /not a valid tag/],
    ])('%j', (rule, message) => {
      expect(() => parseTagRule(rule)).toThrow(TagRuleError);
      expect(() => parseTagRule(rule)).toThrow(message);
    });

    it('needs at least one rule', () => {
      expect(() => parseTagRules([])).toThrow(/at least one tag rule/);
    });
  });

  it('de-duplicates a rule list', () => {
    expect(parseTagRules(['v1', ' v1', '*']).map((r) => r.rule)).toEqual(['v1', '*']);
  });

  describe('splitting --tags', () => {
    it.each([
      ['v1.2.3', ['v1.2.3']],
      ['v1.2.3,v1.3.*', ['v1.2.3', 'v1.3.*']],
      ['v1.{2,3}.*,latest', ['v1.{2,3}.*', 'latest']],
      ['semver:>=1.2.0 <2.0.0, latest', ['semver:>=1.2.0 <2.0.0', 'latest']],
      [' , *, ', ['*']],
    ])('%j', (text, rules) => expect(splitTagRules(text)).toEqual(rules));
  });
});
