import picomatch from 'picomatch';
import * as semver from 'semver';
import {
  canonicalTag,
  FORGEJO_TAGS,
  isValidReleaseTag,
  isValidTag,
  TagCanonicalization,
} from '@gatehouse/oci';

/**
 * Tag rules of an entitlement. One rule is:
 *   `*`                    every tag
 *   `v1.2.3`               that exact tag
 *   `v1.2.*`, `v1.{2,3}.?` a glob (picomatch, `.` is literal, no negation)
 *   `semver:>=1.2.0 <2.0.0` a semver range: a leading `v` on the tag is ignored, the tag must be
 *                          strict semver, and prereleases match only if the range opts in
 *                          (`semver:>=1.2.0-0`, or a comparator with a prerelease on the same
 *                          major.minor.patch), the `semver` package's default. Build metadata
 *                          (`+build`) is refused: it has no precedence, and tags cannot carry `+`.
 *
 * Every rule judges the tag in the form the upstream resolves it (`canonicalTag`): with a
 * case-insensitive upstream (Forgejo) exact tags, globs and semver ranges all compare in lower
 * case, so the spellings of one upstream tag share one verdict (`v2.0.0-rC.1` is judged as
 * `v2.0.0-rc.1`, the image the upstream serves for it). dev-docs/decisions.md says why.
 */
export type TagRuleKind = 'any' | 'exact' | 'glob' | 'semver';

export interface ParsedTagRule {
  /** The rule as stored (trimmed). */
  rule: string;
  kind: TagRuleKind;
  /** Whether the rule admits `tag` (any spelling: it is canonicalised first). */
  matches(tag: string): boolean;
}

export class TagRuleError extends Error {
  constructor(
    readonly rule: string,
    message: string,
  ) {
    super(message);
    this.name = 'TagRuleError';
  }
}

export const SEMVER_RULE_PREFIX = 'semver:';
const GLOB_CHARS = /[*?[\]{}]/;
// Tag characters (with release tags' `+` and `/`) plus the glob syntax we accept; extglobs
// (`+(...)`, `@(...)`) and negation are not (noextglob, nonegate below).
const GLOB_ALLOWED = /^[A-Za-z0-9._\-+/*?[\]{},]+$/;

/** Validates one rule (at grant time) and compiles it for Forgejo's case-insensitive tags. */
export function parseTagRule(raw: string): ParsedTagRule {
  return compileTagRule(raw, FORGEJO_TAGS);
}

/**
 * THE canonical form of a stored rule: the text the matcher compares tags against. With a
 * case-insensitive upstream an exact tag, a glob and a semver range all compare in lower case
 * (`V1.2.*` is `v1.2.*`, `semver:^1.2.0-RC.1` is `semver:^1.2.0-rc.1`); otherwise the rule as
 * stored. The matcher compiles this form, and `gatehouse grant` warns about a rule whose
 * canonical form is not the text typed, so the two cannot disagree. `raw` is a validated rule.
 */
export function canonicalRule(raw: string, how: TagCanonicalization): string {
  const rule = raw.trim();
  if (rule.toLowerCase().startsWith(SEMVER_RULE_PREFIX)) {
    const range = rule.slice(SEMVER_RULE_PREFIX.length).trim();
    return SEMVER_RULE_PREFIX + canonicalTag(range, how);
  }
  return rule === '*' ? rule : canonicalTag(rule, how);
}

/** Validates one rule and compiles it for an upstream that canonicalises tags as `how` says. */
export function compileTagRule(raw: string, how: TagCanonicalization): ParsedTagRule {
  const canon = (tag: string) => canonicalTag(tag, how);
  const rule = raw.trim();
  if (rule === '') throw new TagRuleError(raw, 'a tag rule is empty');
  if (rule === '*') return { rule, kind: 'any', matches: () => true };
  // Git allows a leading "!" in a tag, but as a rule it reads as negation, which rules do not have.
  if (rule.startsWith('!'))
    throw new TagRuleError(
      raw,
      `"${rule}" looks like a negation, which tag rules do not have: list what to admit`,
    );
  const compared = canonicalRule(rule, how);

  if (rule.toLowerCase().startsWith(SEMVER_RULE_PREFIX)) {
    const range = rule.slice(SEMVER_RULE_PREFIX.length).trim();
    const comparedRange = compared.slice(SEMVER_RULE_PREFIX.length);
    if (range === '' || semver.validRange(range) === null || semver.validRange(comparedRange) === null) {
      throw new TagRuleError(
        raw,
        `"${rule}" is not a valid semver range. Example: semver:>=1.2.0 <2.0.0 (or semver:^1.2, semver:~1.4.0)`,
      );
    }
    if (range.includes('+')) {
      throw new TagRuleError(
        raw,
        `"${rule}" names build metadata (+...): it never changes semver precedence, so a range cannot name it; leave it out, e.g. semver:>=1.2.0 <2.0.0`,
      );
    }
    const stored = SEMVER_RULE_PREFIX + range;
    return { rule: stored, kind: 'semver', matches: (tag) => semverTagMatches(comparedRange, canon(tag)) };
  }

  if (GLOB_CHARS.test(rule)) {
    if (!GLOB_ALLOWED.test(rule)) {
      throw new TagRuleError(
        raw,
        `"${rule}" is not a valid glob: use tag characters (letters, digits, ".", "_", "-", "+", "/") with * ? [...] {a,b}`,
      );
    }
    let re: RegExp;
    try {
      // nocase as well: a class such as [A-Z] keeps meaning every spelling of a letter.
      re = picomatch.makeRe(compared, {
        dot: true,
        strictBrackets: true,
        nonegate: true,
        noextglob: true,
        nocase: how.caseInsensitive,
      });
    } catch (e) {
      throw new TagRuleError(raw, `"${rule}" is not a valid glob (${(e as Error).message})`);
    }
    return { rule, kind: 'glob', matches: (tag) => re.test(canon(tag)) };
  }

  // An image tag, or a release tag / package version of git's grammar (`v1.4.0+build7`, `release/1`).
  if (!isValidTag(rule) && !isValidReleaseTag(rule)) {
    throw new TagRuleError(
      raw,
      `"${rule}" is not a valid tag: image tags are 1-128 characters of letters, digits, ".", "_" and "-", not starting with "." or "-"; release tags and package versions may also hold git's other tag characters ("+", "/", …)`,
    );
  }
  return { rule, kind: 'exact', matches: (tag) => canon(tag) === compared };
}

/** `tag` is already canonical; `range` is compared in the same form. */
function semverTagMatches(range: string, tag: string): boolean {
  const bare = tag.replace(/^[vV]/, '');
  // semver.valid() itself forgives a `v` or `=`; one `v` is the documented allowance, no more.
  if (!/^\d/.test(bare)) return false;
  const version = semver.valid(bare);
  if (version === null) return false;
  return semver.satisfies(version, range, { includePrerelease: false });
}

/** Parses and de-duplicates a rule list; throws the first problem. */
export function parseTagRules(rules: readonly string[]): ParsedTagRule[] {
  if (rules.length === 0)
    throw new TagRuleError('', 'at least one tag rule is required (use * for every tag)');
  const seen = new Set<string>();
  const out: ParsedTagRule[] = [];
  for (const raw of rules) {
    const parsed = parseTagRule(raw);
    if (seen.has(parsed.rule)) continue;
    seen.add(parsed.rule);
    out.push(parsed);
  }
  return out;
}

/**
 * Splits the CLI's `--tags` value. Commas separate rules, except inside a glob's `{a,b}`;
 * a semver range keeps its spaces (`semver:>=1.2.0 <2.0.0`).
 */
export function splitTagRules(text: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let current = '';
  for (const ch of text) {
    if (ch === '{') depth++;
    if (ch === '}') depth = Math.max(0, depth - 1);
    if (ch === ',' && depth === 0) {
      out.push(current);
      current = '';
    } else {
      current += ch;
    }
  }
  out.push(current);
  return out.map((r) => r.trim()).filter((r) => r !== '');
}

export interface TagMatch {
  rule: string;
  kind: TagRuleKind;
  /** The tag as judged: its canonical form, the one the upstream is asked for. */
  tag: string;
}

/**
 * THE tag matcher: the first rule admitting `tag`, or null. The registry (manifests, tag lists,
 * reachability), `explain` and the admin API all come here through EntitlementService, so they
 * cannot disagree. Rules are stored validated; a bad one never matches.
 */
export function matchTagRules(
  rules: readonly string[],
  tag: string,
  how: TagCanonicalization,
): TagMatch | null {
  for (const raw of rules) {
    const parsed = compiled(raw, how);
    if (parsed?.matches(tag)) return { rule: parsed.rule, kind: parsed.kind, tag: canonicalTag(tag, how) };
  }
  return null;
}

// Compiled rules are pure functions of their text; tag lists check many tags against few rules.
const COMPILED_MAX = 2_000;
const compiledRules = new Map<string, ParsedTagRule | null>();

function compiled(raw: string, how: TagCanonicalization): ParsedTagRule | null {
  const key = `${how.caseInsensitive ? 'i' : 's'}:${raw}`;
  const hit = compiledRules.get(key);
  if (hit !== undefined) return hit;
  let parsed: ParsedTagRule | null;
  try {
    parsed = compileTagRule(raw, how);
  } catch {
    parsed = null;
  }
  if (compiledRules.size >= COMPILED_MAX) compiledRules.clear();
  compiledRules.set(key, parsed);
  return parsed;
}
