import { closeSync, existsSync, mkdirSync, openSync, statSync, unlinkSync } from 'node:fs';
import { dirname, join, sep } from 'node:path';
import type { GatewayConfig } from './gateway-config';

/**
 * The start check of the directories the gateway writes: DATA_DIR (signing key, access-key
 * secret, embedded PostgreSQL, audit spool) and OCI_CACHE_DIR (blobs). Each is created if
 * missing and written to once. Without it a root-owned volume under a non-root container
 * starts fine and then fails every blob with 502 while cached manifests still work.
 *
 * Returns one line per directory that cannot be written, naming the variable, the path (the
 * volume's mount point in a container) and the fix; empty when all is well.
 */
export function unwritableDirectories(config: GatewayConfig): string[] {
  // The volume names are the ones compose.yml declares.
  const dirs: Array<[variable: string, path: string, volume: string]> = [
    ['DATA_DIR', config.server.dataDir, 'gatehouse-data'],
    ['OCI_CACHE_DIR', config.cache.dir, 'gatehouse-cache'],
  ];
  const problems: string[] = [];
  const failed: string[] = [];
  for (const [variable, path, volume] of dirs) {
    // A cache directory that could not be created inside an unwritable DATA_DIR has the same
    // cause and fix: one line for it is enough.
    if (!existsSync(path) && failed.some((f) => path.startsWith(f + sep))) continue;
    const error = writeProbe(path);
    if (error) {
      problems.push(describe(variable, path, volume, error));
      failed.push(path);
    }
  }
  return problems;
}

function writeProbe(dir: string): NodeJS.ErrnoException | null {
  try {
    mkdirSync(dir, { recursive: true });
    const probe = join(dir, `.gatehouse-write-check-${process.pid}`);
    closeSync(openSync(probe, 'w'));
    unlinkSync(probe);
    return null;
  } catch (e) {
    return e as NodeJS.ErrnoException;
  }
}

/** The directory itself, or its nearest existing parent when it could not be created. */
function ownerOf(path: string): string {
  for (let p = path; ; p = dirname(p)) {
    try {
      const s = statSync(p);
      const mode = (s.mode & 0o777).toString(8);
      return `${p === path ? 'it' : p} is owned by uid ${s.uid}:${s.gid}, mode ${mode}`;
    } catch {
      if (dirname(p) === p) return 'no parent exists';
    }
  }
}

function describe(variable: string, path: string, volume: string, error: NodeJS.ErrnoException): string {
  const uid = process.getuid?.() ?? 'unknown';
  const code = error.code ?? error.message;
  if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') {
    return (
      `${variable}=${path} is not writable by uid ${uid} (${code}; ${ownerOf(path)}). ` +
      `A bind mount keeps the host directory's owner: mount a named volume there ` +
      `(docker run -v ${volume}:${path}), or chown -R ${uid} the host directory`
    );
  }
  return `${variable}=${path} cannot be used (${code}: ${error.message}). Fix: point ${variable} at a directory uid ${uid} can write`;
}
