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
    for (const file of [...sources(join(root, 'apps')), ...sources(join(root, 'libs'))]) {
      const lines = readFileSync(file, 'utf8').split('\n');
      lines.forEach((line, i) => {
        for (const m of line.matchAll(/\breason:\s*(['`])((?:(?!\1).)*)\1/g)) {
          if (/detail:\s*\{[^}]*$/.test(line.slice(0, m.index))) continue;
          seen++;
          const code = m[2].replace(/\$\{[^}]*\}/g, 'x');
          if (!REASON_CODE_REGEXP.test(code)) offenders.push(`${relative(root, file)}:${i + 1}: ${m[0]}`);
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
});
