import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { promisify } from 'node:util';

const root = resolve(__dirname, '../../../..');

/** `npx just --list` is how a newcomer finds the recipes: one sentence each, the right one. */
describe('the justfile', () => {
  it('describes every recipe with the one-line comment directly above it', async () => {
    const { stdout } = await promisify(execFile)('npx', ['just', '--list'], { cwd: root });
    const listed = new Map(
      stdout
        .split('\n')
        .slice(1)
        .map((l) => /^\s+(\S+)(?: [^#]*)?\s*# (.*)$/.exec(l))
        .filter((m): m is RegExpExecArray => m !== null)
        .map((m) => [m[1], m[2]]),
    );
    const lines = readFileSync(resolve(root, 'justfile'), 'utf8').split('\n');
    const recipes = lines
      .map((l, i) => ({ name: /^([a-z][\w-]*)(?:\s[^:=]*)?:(?!=)/.exec(l)?.[1], i }))
      .filter((r): r is { name: string; i: number } => !!r.name);
    expect(recipes.length).toBeGreaterThan(10);
    for (const { name, i } of recipes) {
      const above = lines[i - 1].replace(/^# /, '');
      // A sentence of its own: capitalised, ending with a full stop.
      expect({ name, description: listed.get(name) }).toEqual({ name, description: above });
      expect({ name, sentence: /^[A-Z`].*\.$/.test(above) }).toEqual({ name, sentence: true });
    }
    expect(listed.get('load')).toMatch(/^Load run:/);
    expect(listed.get('bench')).toMatch(/^Side-by-side benchmarks/);
    expect(listed.get('demo')).toMatch(/^The demo stack:/);
  });
});
