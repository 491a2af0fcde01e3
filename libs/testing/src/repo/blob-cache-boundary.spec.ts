import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';

const ROOT = resolve(__dirname, '../../../..');
const BLOB_CACHE = join(ROOT, 'libs', 'blob-cache');
const SCANNED = ['apps', 'libs', 'bench', 'scripts'];
/** The cache's temp-file and write machinery: only libs/blob-cache may use it. */
const INTERNAL_CALLS = /\b(createTempFile|commitTempFile|discardTempFile|FileWriteBehind)\b/;

/** Every TypeScript source outside libs/blob-cache (files read, no process spawned). */
function sources(dir: string, out: string[] = []): string[] {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (entry.name !== 'node_modules' && entry.name !== 'dist' && path !== BLOB_CACHE) sources(path, out);
    } else if (/\.[cm]?[tj]s$/.test(entry.name) && path !== __filename) out.push(path);
  }
  return out;
}

/** The module specifiers a file imports, requires or re-exports. */
function specifiers(text: string): string[] {
  const found: string[] = [];
  const pattern = /(?:\bfrom\s*|\bimport\s*\(\s*|\brequire\s*\(\s*|\bimport\s+)(['"])([^'"]+)\1/g;
  for (let m = pattern.exec(text); m; m = pattern.exec(text)) found.push(m[2]);
  return found;
}

function reachesIntoBlobCache(file: string, specifier: string): boolean {
  if (/^@gatehouse\/blob-cache\/./.test(specifier)) return true;
  if (!specifier.startsWith('.')) return false;
  const target = resolve(dirname(file), specifier);
  return (
    target.startsWith(BLOB_CACHE + sep) &&
    target !== join(BLOB_CACHE, 'src') &&
    target !== join(BLOB_CACHE, 'src', 'index')
  );
}

describe('libs/blob-cache boundary', () => {
  const files = SCANNED.flatMap((d) => sources(join(ROOT, d)));

  it('scans the repository (the walk found the known users of the store)', () => {
    const names = files.map((f) => relative(ROOT, f));
    expect(names).toEqual(expect.arrayContaining([join('libs', 'downloads', 'src', 'download-store.ts')]));
    expect(names.some((n) => n.startsWith(join('libs', 'blob-cache')))).toBe(false);
  });

  it('is imported only through its index (@gatehouse/blob-cache)', () => {
    const offenders = files.flatMap((file) =>
      specifiers(readFileSync(file, 'utf8'))
        .filter((s) => reachesIntoBlobCache(file, s))
        .map((s) => `${relative(ROOT, file)}: ${s}`),
    );
    expect(offenders).toEqual([]);
  });

  it('keeps its temp files and writers to itself', () => {
    const offenders = files
      .filter((file) => INTERNAL_CALLS.test(readFileSync(file, 'utf8')))
      .map((file) => relative(ROOT, file));
    expect(offenders).toEqual([]);
  });
});
