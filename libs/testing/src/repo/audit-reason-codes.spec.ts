import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { REASON_CODE_REGEXP } from '@gatehouse/oci';

const root = join(__dirname, '../../../..');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return e.name === 'node_modules' || e.name === 'testing' ? [] : sources(path);
    return e.name.endsWith('.ts') && !/\.(int-)?spec\.ts$/.test(e.name) ? [path] : [];
  });
}

const productSources = () => [...sources(join(root, 'apps')), ...sources(join(root, 'libs'))];

/** `reason: '…'` literals of a line, except a member-facing envelope `detail: {...}`. */
function reasonLiterals(line: string): string[] {
  const out: string[] = [];
  for (const m of line.matchAll(/\breason:\s*(['`])((?:(?!\1).)*)\1/g)) {
    if (/detail:\s*\{[^}]*$/.test(line.slice(0, m.index))) continue;
    out.push(m[2]);
  }
  return out;
}

/**
 * Files whose `reason:` literals are not audit reasons: explain's verdict (its own vocabulary,
 * matching the audit's where one exists), the CLI (it reads audit rows), /readyz rows, the
 * upstream failure labels (audited with the `upstream_` prefix, collected from their type), and
 * the connection limits' metric label (a refused connection has no request to audit), and the
 * upstream failure reporter's log lines (the credential backoff's warning is no audit row), and
 * the console's live checks (explain's last two checks, shown on the page, never written).
 */
const NOT_AUDIT = [
  'libs/entitlements/src/access-explanation.ts',
  'apps/cli/',
  'apps/gateway/src/health/',
  'libs/downloads/src/downloads.readiness.ts',
  'libs/upstream/src/upstream.error.ts',
  'libs/upstream/src/upstream-health.service.ts',
  'apps/gateway/src/http/connection-limits.ts',
  'libs/upstream/src/upstream-failure.reporter.ts',
  'apps/gateway/src/console/console-live-checks.ts',
];

/** The string members of `type <name> = | 'a' | 'b';` in the source. */
function unionMembers(text: string, name: string): string[] {
  const m = new RegExp(`type ${name} =([^;]*);`).exec(text);
  return m ? [...m[1].matchAll(/'([a-z_]+)'/g)].map((x) => x[1]) : [];
}

/**
 * Every reason code the gateway can write to the audit `reason` column, from the code: the
 * `reason: '…'` literals, the downloads' `notFound('…')`, the token refusals and rejections
 * and the console's sign-in refusals (their types), the upstream failures (`upstream_<reason>`), the insufficient-scope 401 and a
 * download's `internal_error`.
 */
function reasonsInCode(): Set<string> {
  // The 401 of a token without the scope; a download error without a code of its own.
  const found = new Set<string>(['insufficient_scope', 'internal_error']);
  for (const file of productSources()) {
    const rel = relative(root, file);
    const text = readFileSync(file, 'utf8');
    if (!NOT_AUDIT.some((p) => rel.startsWith(p))) {
      for (const line of text.split('\n'))
        for (const r of reasonLiterals(line)) if (!r.includes('${')) found.add(r);
      for (const call of text.matchAll(/\bnotFound\(([^)]*)\)/g))
        for (const q of call[1].matchAll(/(?<!===\s*)'([a-z_]+)'/g)) found.add(q[1]);
    }
    for (const type of ['TokenRejection', 'CredentialFailureReason', 'RefusalReason', 'StaffSignInRefusal'])
      for (const r of unionMembers(text, type)) found.add(r);
    for (const r of unionMembers(text, 'UpstreamFailureReason')) found.add(`upstream_${r}`);
  }
  return found;
}

/** The codes listed under "Audit reason codes" in dev-docs/reference.md (first column). */
function reasonsInDocs(): Set<string> {
  const text = readFileSync(join(root, 'dev-docs/reference.md'), 'utf8');
  const start = text.indexOf('\n## Audit reason codes');
  if (start < 0) throw new Error('dev-docs/reference.md has no "## Audit reason codes" section');
  const section = text.slice(start + 1).split(/\n## /)[0];
  return new Set([...section.matchAll(/^\| `([a-z_]+)` \|/gm)].map((m) => m[1]));
}

/**
 * The audit `reason` column holds codes (`gatehouse audit --reason tag_not_entitled`), never
 * prose: prose belongs in the log line (OciError `logDetail`). Every literal given as a `reason`
 * in the product's source must be a snake_case code; a template's `${...}` parts count as code.
 * A `reason` inside an envelope `detail: {...}` is member-facing text and is not audited.
 */
describe('audit reasons', () => {
  it('are snake_case codes wherever the source names one', () => {
    const offenders: string[] = [];
    let seen = 0;
    for (const file of productSources()) {
      const lines = readFileSync(file, 'utf8').split('\n');
      lines.forEach((line, i) => {
        for (const literal of reasonLiterals(line)) {
          seen++;
          const code = literal.replace(/\$\{[^}]*\}/g, 'x');
          if (!REASON_CODE_REGEXP.test(code)) offenders.push(`${relative(root, file)}:${i + 1}: ${literal}`);
        }
      });
    }
    expect(offenders).toEqual([]);
    expect(seen).toBeGreaterThan(20);
  });

  it('the check itself catches prose', () => {
    expect(REASON_CODE_REGEXP.test('malformed reference')).toBe(false);
    expect(REASON_CODE_REGEXP.test('UPSTREAM_FAILED: x')).toBe(false);
    expect(REASON_CODE_REGEXP.test('tag_not_entitled')).toBe(true);
  });

  it('are each listed in dev-docs/reference.md, and the list names no code the gateway cannot write', () => {
    const code = reasonsInCode();
    const docs = reasonsInDocs();
    expect(code.size).toBeGreaterThan(40);
    expect({ missingFromDocs: [...code].filter((r) => !docs.has(r)).sort() }).toEqual({
      missingFromDocs: [],
    });
    expect({ notInCode: [...docs].filter((r) => !code.has(r)).sort() }).toEqual({ notInCode: [] });
  });
});
