import picomatch from 'picomatch';
import * as semver from 'semver';
import { isValidTag } from '@gatehouse/oci';

/**
 * Tag rules of an entitlement. One rule is:
 *   `*`                    every tag
 *   `v1.2.3`               that exact tag (case-sensitive, like the OCI spec's tags)
 *   `v1.2.*`, `v1.{2,3}.?` a glob (picomatch, `.` is literal, no negation)
 *   `semver:>=1.2.0 <2.0.0` a semver range: a leading `v` on the tag is ignored, the tag must be
 *                          strict semver, and prereleases match only if the range opts in
 *                          (`semver:>=1.2.0-0`, or a comparator with a prerelease on the same
 *                          major.minor.patch), the `semver` package's default.
 */
export type TagRuleKind = 'any' | 'exact' | 'glob' | 'semver';

export interface ParsedTagRule {
  /** The rule as stored (trimmed). */
  rule: string;
  kind: TagRuleKind;
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
// Tag characters plus the glob syntax we accept; extglobs (`+(...)`, `@(...)`) and negation are not.
const GLOB_ALLOWED = /^[A-Za-z0-9._\-*?[\]{},]+$/;

export function parseTagRule(raw: string): ParsedTagRule {
  const rule = raw.trim();
  if (rule === '') throw new TagRuleError(raw, 'a tag rule is empty');
  if (rule === '*') return { rule, kind: 'any', matches: () => true };

  if (rule.toLowerCase().startsWith(SEMVER_RULE_PREFIX)) {
    const range = rule.slice(SEMVER_RULE_PREFIX.length).trim();
    if (range === '' || semver.validRange(range) === null) {
      throw new TagRuleError(
        raw,
        `"${rule}" is not a valid semver range. Example: semver:>=1.2.0 <2.0.0 (or semver:^1.2, semver:~1.4.0)`,
      );
    }
    const stored = SEMVER_RULE_PREFIX + range;
    return { rule: stored, kind: 'semver', matches: (tag) => semverTagMatches(range, tag) };
  }

  if (GLOB_CHARS.test(rule)) {
    if (!GLOB_ALLOWED.test(rule)) {
      throw new TagRuleError(
        raw,
        `"${rule}" is not a valid glob: use tag characters (letters, digits, ".", "_", "-") with * ? [...] {a,b}`,
      );
    }
    let re: RegExp;
    try {
      re = picomatch.makeRe(rule, { dot: true, strictBrackets: true, nonegate: true, noextglob: true });
    } catch (e) {
      throw new TagRuleError(raw, `"${rule}" is not a valid glob (${(e as Error).message})`);
    }
    return { rule, kind: 'glob', matches: (tag) => re.test(tag) };
  }

  if (!isValidTag(rule)) {
    throw new TagRuleError(
      raw,
      `"${rule}" is not a valid tag: tags are 1-128 characters of letters, digits, ".", "_" and "-", not starting with "." or "-"`,
    );
  }
  return { rule, kind: 'exact', matches: (tag) => tag === rule };
}

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
}

/** The first rule admitting `tag`, or null. Rules are stored validated; a bad one never matches. */
export function matchTagRules(rules: readonly string[], tag: string): TagMatch | null {
  for (const raw of rules) {
    const parsed = compiled(raw);
    if (parsed?.matches(tag)) return { rule: parsed.rule, kind: parsed.kind };
  }
  return null;
}

// Compiled rules are pure functions of their text; tag lists check many tags against few rules.
const COMPILED_MAX = 2_000;
const compiledRules = new Map<string, ParsedTagRule | null>();

function compiled(raw: string): ParsedTagRule | null {
  const hit = compiledRules.get(raw);
  if (hit !== undefined) return hit;
  let parsed: ParsedTagRule | null;
  try {
    parsed = parseTagRule(raw);
  } catch {
    parsed = null;
  }
  if (compiledRules.size >= COMPILED_MAX) compiledRules.clear();
  compiledRules.set(raw, parsed);
  return parsed;
}
