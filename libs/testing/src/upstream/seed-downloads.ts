import { createHash } from 'node:crypto';
import { ForgejoFront } from './forgejo-front.types';

/** Deterministic bytes: sha256 in counter mode over a label (no randomness, so runs compare). */
export function deterministicBytes(label: string, size: number): Buffer {
  const out = Buffer.alloc(size);
  for (let off = 0, n = 0; off < size; n++) {
    const block = createHash('sha256').update(`${label}:${n}`).digest();
    off += block.copy(out, off);
  }
  return out;
}

export interface SeededDownloads {
  /** `tag → filename → bytes` of acme/tool's releases. */
  releases: Record<string, Record<string, Buffer>>;
  /** `version → filename → bytes` of the generic package acme/cli. */
  packages: Record<string, Record<string, Buffer>>;
}

/**
 * Releases of `acme/tool` (v1.0.0, v1.2.0 with a ~10 MB asset, v2.0.0, and the prerelease
 * v2.1.0-rc1, published in that order) and versions 1.4.0 and 2.0.0 of the generic package
 * `acme/cli`, on a Forgejo front.
 */
export function seedDownloads(front: ForgejoFront): SeededDownloads {
  const releases: SeededDownloads['releases'] = {
    'v1.0.0': {
      'tool-linux-amd64': deterministicBytes('tool-1.0.0', 300_000),
      'checksums.txt': Buffer.from('x\n'),
    },
    'v1.2.0': {
      'tool-linux-amd64': deterministicBytes('tool-1.2.0', 10 * 1024 * 1024 + 123),
      NOTICE: Buffer.from('licence\n'),
    },
    'v2.0.0': { 'tool-linux-amd64': deterministicBytes('tool-2.0.0', 200_000) },
    'v2.1.0-rc1': { 'tool-linux-amd64': deterministicBytes('tool-2.1.0-rc1', 100_000) },
  };
  const base = Date.UTC(2026, 0, 1);
  Object.entries(releases).forEach(([tag, assets], i) =>
    front.addRelease('acme/tool', {
      tag,
      assets,
      prerelease: tag.includes('-rc'),
      createdAt: new Date(base + i * 86_400_000),
    }),
  );
  const packages: SeededDownloads['packages'] = {
    '1.4.0': { 'cli.tar.gz': deterministicBytes('cli-1.4.0', 500_000) },
    '2.0.0': { 'cli.tar.gz': deterministicBytes('cli-2.0.0', 400_000) },
  };
  for (const [version, files] of Object.entries(packages))
    for (const [name, data] of Object.entries(files)) front.addPackageFile('acme/cli', version, name, data);
  return { releases, packages };
}
