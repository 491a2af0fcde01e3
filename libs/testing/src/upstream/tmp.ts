import { mkdtempSync, rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TempDir {
  readonly path: string;
  cleanup(): Promise<void>;
}

const PREFIX = 'gatehouse-';

// Directories still alive when the process exits are removed synchronously, so an aborted
// test run does not leave copies of the seeded registry storage behind.
const live = new Set<string>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const dir of live) rmSync(dir, { recursive: true, force: true });
  });
}

export async function makeTempDir(label = 'tmp'): Promise<TempDir> {
  installExitHook();
  const path = await mkdtemp(join(tmpdir(), `${PREFIX}${label}-`));
  live.add(path);
  return {
    path,
    async cleanup() {
      live.delete(path);
      await rm(path, { recursive: true, force: true });
    },
  };
}

export function makeTempDirSync(label = 'tmp'): TempDir {
  installExitHook();
  const path = mkdtempSync(join(tmpdir(), `${PREFIX}${label}-`));
  live.add(path);
  return {
    path,
    async cleanup() {
      live.delete(path);
      await rm(path, { recursive: true, force: true });
    },
  };
}
