import { join, resolve } from 'node:path';

export const REPO_ROOT = resolve(__dirname, '..');
/** Scratch space of the bench (images, logs, data); removed by nothing but a developer. */
export const BENCH_DIR = join(REPO_ROOT, '.tmp', 'bench');
/** Machine-readable results of the last run (git-ignored). */
export const RESULTS_DIR = join(REPO_ROOT, 'bench', 'results');
