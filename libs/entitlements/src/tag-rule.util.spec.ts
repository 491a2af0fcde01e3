import { TagCanonicalization } from '@gatehouse/oci';
import {
  canonicalRule,
  compileTagRule,
  matchTagRules,
  parseTagRule,
  parseTagRules,
  splitTagRules,
  TagRuleError,
} from './tag-rule.util';

const INSENSITIVE: TagCanonicalization = { caseInsensitive: true };
const SENSITIVE: TagCanonicalization = { caseInsensitive: false };

/** Every spelling of `text` that differs only in the case of its letters (at most 2^10). */
function caseVariants(text: string): string[] {
  const letters = [...text]
    .map((c, i) => (c.toLowerCase() !== c.toUpperCase() ? i : -1))
    .filter((i) => i >= 0);
  const picked = letters.slice(0, 10);
  const out = new Set<string>();
  for (let mask = 0; mask < 1 << picked.length; mask++) {
    const chars = [...text.toLowerCase()];
    picked.forEach((at, bit) => {
      if (mask & (1 << bit)) chars[at] = chars[at].toUpperCase();
    });
    out.add(chars.join(''));
  }
  out.add(text.toUpperCase());
  return [...out];
}

describe('tag rules', () => {
  describe('matching', () => {
    const cases: Array<[rule: string, tag: string, expected: boolean]> = [
      // *
      ['*', 'latest', true],
      ['*', 'v1.2.3', true],
      ['*', '.hidden-looking', true],
      // exact: equality of the canonical (lowercase) forms
      ['v1.2.3', 'v1.2.3', true],
      ['v1.2.3', 'v1.2.4', false],
      ['v1.2.3', 'V1.2.3', true],
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
      expect(matchTagRules([rule], tag, INSENSITIVE) !== null).toBe(expected);
    });
  });

  // The promise: with an upstream that finds tags whatever their case (Forgejo), every spelling
  // of one upstream tag gets the verdict of its canonical form, for every rule kind and however
  // the rule itself is spelled. `rC` sorts before `rc` in ASCII, which let v2.0.0-rC.1 into
  // a range that refuses v2.0.0-rc.1, and Forgejo served the refused image for it.
  describe('case variants of one upstream tag share one verdict (case-insensitive upstream)', () => {
    const canonicalCases: Array<[rule: string, tag: string, admitted: boolean]> = [
      ['v1.2.3', 'v1.2.3', true],
      ['v1.2.3', 'v1.2.4', false],
      ['latest', 'latest', true],
      ['v2.0.0-rc.1', 'v2.0.0-rc.1', true],
      ['v2.0.0-rc.1', 'v2.0.0-rc.2', false],
      ['v1.2.*', 'v1.2.3-rc.1', true],
      ['v1.2.*', 'v1.3.0-rc.1', false],
      ['*-beta*', 'v2.0.0-beta.1', true],
      ['*-beta*', 'v2.0.0-rc.1', false],
      ['v1.[a-c]*', 'v1.beta', true],
      ['v1.[a-c]*', 'v1.rc', false],
      ['semver:>=2.0.0-beta <2.0.0-rc', 'v2.0.0-beta.2', true],
      ['semver:>=2.0.0-beta <2.0.0-rc', 'v2.0.0-rc.1', false],
      ['semver:>=2.0.0-beta <2.0.0-rc', 'v2.0.0-alpha.1', false],
      ['semver:>=1.2.0 <2.0.0', 'v1.9.9', true],
      ['semver:>=1.2.0 <2.0.0', 'v1.3.0-beta.1', false],
      ['semver:~1.4.0', 'v1.4.9', true],
      ['semver:~1.4.0', 'v1.5.0', false],
    ];
    it.each(canonicalCases)('%s vs every spelling of %s → %s', (rule, tag, admitted) => {
      for (const ruleSpelling of [rule, rule.toUpperCase()]) {
        const compiled = compileTagRule(ruleSpelling, INSENSITIVE);
        const wrong = caseVariants(tag).filter((variant) => compiled.matches(variant) !== admitted);
        expect({ rule: ruleSpelling, wrong }).toEqual({ rule: ruleSpelling, wrong: [] });
        for (const variant of caseVariants(tag)) {
          const match = matchTagRules([ruleSpelling], variant, INSENSITIVE);
          expect(match?.tag ?? null).toBe(admitted ? tag : null);
        }
      }
    });

    it('tries more than a handful of spellings', () => {
      expect(caseVariants('v2.0.0-rc.1')).toHaveLength(8);
    });
  });

  describe('a case-sensitive upstream keeps spellings apart', () => {
    it.each([
      ['v1.2.3', 'V1.2.3', false],
      ['v1.2.*', 'V1.2.3', false],
      ['latest', 'LATEST', false],
      // a distinct upstream tag, judged on its own spelling: ASCII order puts rC before rc
      ['semver:>=2.0.0-beta <2.0.0-rc', 'v2.0.0-rC.1', true],
      ['semver:>=2.0.0-beta <2.0.0-rc', 'v2.0.0-rc.1', false],
      ['semver:>=1.2.0 <2.0.0', 'V1.9.9', true],
    ])('%s vs %s → %s', (rule, tag, expected) => {
      expect(compileTagRule(rule, SENSITIVE).matches(tag)).toBe(expected);
      expect(matchTagRules([rule], tag, SENSITIVE)?.tag ?? null).toBe(expected ? tag : null);
    });
  });

  it('reports which rule matched and the tag as judged, first match wins', () => {
    expect(matchTagRules(['v2.*', 'semver:^1.0.0', '*'], 'V1.4.0', INSENSITIVE)).toEqual({
      rule: 'semver:^1.0.0',
      kind: 'semver',
      tag: 'v1.4.0',
    });
    expect(matchTagRules(['v1.2.3'], 'v1.2.3', INSENSITIVE)).toEqual({
      rule: 'v1.2.3',
      kind: 'exact',
      tag: 'v1.2.3',
    });
    expect(matchTagRules(['v1.*'], 'v2.0', INSENSITIVE)).toBeNull();
    expect(matchTagRules([], 'v1', INSENSITIVE)).toBeNull();
  });

  it('ignores a corrupt stored rule instead of admitting everything', () => {
    expect(matchTagRules(['semver:not a range'], '1.0.0', INSENSITIVE)).toBeNull();
    expect(matchTagRules(['semver:not a range', 'v1'], 'v1', INSENSITIVE)).toEqual({
      rule: 'v1',
      kind: 'exact',
      tag: 'v1',
    });
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
      ['v1//2', /not a valid tag/],
      ['v1~2', /not a valid tag/],
      ['-x', /not a valid tag/],
      ['.hidden', /not a valid tag/],
      ['a'.repeat(256), /not a valid tag/],
      ['v1.[2', /not a valid glob/],
      ['v1/(a)*', /not a valid glob/],
      ['+(a|b)*', /not a valid glob/],
      ['!v1*', /negation/],
      ['!v1', /negation/],
      ['tag with space', /not a valid tag/],
      ['semver:>=1.2.0+build.5', /build metadata/],
    ])('%j', (rule, message) => {
      expect(() => parseTagRule(rule)).toThrow(TagRuleError);
      expect(() => parseTagRule(rule)).toThrow(message);
    });

    it('needs at least one rule', () => {
      expect(() => parseTagRules([])).toThrow(/at least one tag rule/);
    });
  });

  it("accepts release tags and package versions of git's grammar as exact rules and in globs", () => {
    const how = { caseInsensitive: false };
    expect(compileTagRule('v1.4.0+build7', how).matches('v1.4.0+build7')).toBe(true);
    expect(compileTagRule('v1.4.0+build7', how).matches('v1.4.0')).toBe(false);
    expect(compileTagRule('release/*', how).matches('release/2026-01')).toBe(true);
    expect(compileTagRule('release/*', how).matches('release/2026/01')).toBe(false);
    expect(compileTagRule('v1.4.0+*', how).matches('v1.4.0+build7')).toBe(true);
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

describe('canonicalRule', () => {
  const folded = { caseInsensitive: true };
  const exact = { caseInsensitive: false };

  it('is the form the matcher compares: every kind of rule folded with the upstream, semver ranges too', () => {
    expect(canonicalRule('V1.2.3', folded)).toBe('v1.2.3');
    expect(canonicalRule('Beta-[A-Z]*', folded)).toBe('beta-[a-z]*');
    expect(canonicalRule('semver:>=1.0.0-RC.1', folded)).toBe('semver:>=1.0.0-rc.1');
    expect(canonicalRule('*', folded)).toBe('*');
    expect(canonicalRule('semver:>=1.0.0-RC.1', exact)).toBe('semver:>=1.0.0-RC.1');
  });

  it('agrees with the matcher: a rule admits a tag exactly when its canonical form admits it', () => {
    for (const rule of ['V1.2.3', 'v1.2.*', 'semver:>=1.0.0-RC.1 <2', 'Beta-[A-Z]']) {
      for (const tag of ['v1.2.3', 'V1.2.3', 'v1.2.9', 'v1.0.0-rc.2', 'v1.0.0-RC.2', 'beta-x', 'Beta-X']) {
        const direct = matchTagRules([rule], tag, folded) !== null;
        const viaCanonical = matchTagRules([canonicalRule(rule, folded)], tag, folded) !== null;
        expect({ rule, tag, direct }).toEqual({ rule, tag, direct: viaCanonical });
      }
    }
  });
});
