import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

const root = resolve(__dirname, '../../../..');

/** Docs speak of the product alone: no path of the machine they were written on. */
describe('the documentation', () => {
  it('names no path outside the repository', () => {
    const docs = execFileSync('git', ['ls-files', '*.md', '.env.example', 'justfile'], { cwd: root })
      .toString()
      .split('\n')
      .filter(Boolean);
    expect(docs.length).toBeGreaterThan(5);
    // Absolute paths of a workstation, and relative paths that climb out of the checkout.
    const outside =
      /(^|[\s`'"(=])(\/work\/|\/home\/|\/root\/|\/Users\/|\/tmp\/|\.\.\/\.\.\/\.\.\/|\.\.\/shared)/;
    const found = docs.flatMap((file) =>
      readFileSync(resolve(root, file), 'utf8')
        .split('\n')
        .map((line, i) => ({ file, line: i + 1, text: line }))
        .filter((l) => outside.test(l.text)),
    );
    expect(found).toEqual([]);
  });
});
