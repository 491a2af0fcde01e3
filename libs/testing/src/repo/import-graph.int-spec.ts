import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const root = resolve(__dirname, '../../../..');

/** Every TypeScript source file (specs aside) under apps/ and libs/, relative to the root. */
function sources(): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(join(root, dir), { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) {
        if (entry.name !== 'node_modules') walk(path);
      } else if (path.endsWith('.ts') && !/\.(int-)?spec\.ts$/.test(path)) out.push(path);
    }
  };
  walk('apps');
  walk('libs');
  return out;
}

/** The files a file imports (type-only imports too: two files naming each other are one room). */
function importGraph(files: string[]): Map<string, string[]> {
  const known = new Set(files);
  const resolveSpecifier = (from: string, specifier: string): string | null => {
    let base: string;
    if (specifier.startsWith('.')) base = relative(root, resolve(root, dirname(from), specifier));
    else {
      const alias = /^@gatehouse\/([^/]+)(\/.*)?$/.exec(specifier);
      if (!alias) return null;
      base = `libs/${alias[1]}/src${alias[2] ?? ''}`;
    }
    return [`${base}.ts`, `${base}/index.ts`].find((f) => known.has(f)) ?? null;
  };
  const graph = new Map<string, string[]>();
  for (const file of files) {
    const text = readFileSync(join(root, file), 'utf8');
    const deps = [...text.matchAll(/^(?:import|export)\s[^;]*?\sfrom\s+'([^']+)'/gm)]
      .map((m) => resolveSpecifier(file, m[1]))
      .filter((f): f is string => f !== null);
    graph.set(file, deps);
  }
  return graph;
}

/** The strongly connected groups of more than one node (Tarjan): each is an import circle. */
function circles(graph: Map<string, string[]>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string) => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const group: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        group.push(w);
      } while (w !== v);
      if (group.length > 1) found.push(group.sort());
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return found;
}

/**
 * Circles that predate this test, in a lib being reworked on its own: each is named exactly, so
 * a new circle (anywhere, this lib included) still fails.
 */
const KNOWN = [['libs/blob-cache/src/blob-fill.operation.ts', 'libs/blob-cache/src/blob-fill.types.ts']];

describe('the import graph', () => {
  const files = sources();
  const graph = importGraph(files);

  it('reads the repository', () => {
    expect(files.length).toBeGreaterThan(100);
    expect(graph.get('apps/gateway/src/registry/registry.controller.ts')).toContain(
      'libs/registry/src/index.ts',
    );
  });

  it('has no import circle between files', () => {
    const known = new Set(KNOWN.map((c) => c.join(' ')));
    expect(circles(graph).filter((c) => !known.has(c.join(' ')))).toEqual([]);
  });

  it('finds a circle when there is one (the check itself)', () => {
    const g = new Map([
      ['a.ts', ['b.ts']],
      ['b.ts', ['c.ts']],
      ['c.ts', ['a.ts']],
      ['d.ts', ['a.ts']],
    ]);
    expect(circles(g)).toEqual([['a.ts', 'b.ts', 'c.ts']]);
  });

  it('has no circle between libs, and no lib imports an app', () => {
    const libOf = (f: string) => /^libs\/([^/]+)\//.exec(f)?.[1] ?? (f.startsWith('apps/') ? 'apps' : null);
    const libs = new Map<string, string[]>();
    for (const [file, deps] of graph) {
      const from = libOf(file);
      if (!from || from === 'apps' || from === 'testing') continue;
      const to = deps.map(libOf).filter((l): l is string => l !== null && l !== from);
      libs.set(from, [...new Set([...(libs.get(from) ?? []), ...to])]);
    }
    expect([...libs].filter(([, deps]) => deps.includes('apps'))).toEqual([]);
    expect(circles(libs)).toEqual([]);
  });
});
