import { join } from 'node:path';
// eslint-disable-next-line no-restricted-imports
import { runCommand } from '../libs/testing/src/upstream';
import { REPO_ROOT } from './paths';

export interface WrkResult {
  requests: number;
  durationUs: number;
  bytes: number;
  errors: { connect: number; read: number; write: number; status: number; timeout: number };
  latencyUs: { p50: number; p90: number; p99: number; max: number; mean: number };
}

export interface WrkRun {
  url: string;
  connections: number;
  seconds: number;
  headers?: Record<string, string>;
  /** Per-request timeout; large bodies need more than wrk's 2 s. */
  timeoutSeconds?: number;
}

/**
 * One bounded wrk run (loopback only). Threads: one per 4 connections, at most 2 (the machine
 * has 2 cores and the server under test needs them too).
 */
export async function wrk(
  run: WrkRun,
): Promise<WrkResult & { requestsPerSecond: number; bytesPerSecond: number }> {
  if (!/^http:\/\/127\.0\.0\.1:\d+\//.test(run.url))
    throw new Error(`refusing a non-loopback target: ${run.url}`);
  const threads = Math.min(2, Math.max(1, Math.ceil(run.connections / 4)));
  const args = [
    `-t${threads}`,
    `-c${run.connections}`,
    `-d${run.seconds}s`,
    `--timeout`,
    `${run.timeoutSeconds ?? 10}s`,
    '--latency',
    '-s',
    join(REPO_ROOT, 'bench/wrk-report.lua'),
  ];
  for (const [k, v] of Object.entries(run.headers ?? {})) args.push('-H', `${k}: ${v}`);
  args.push(run.url);
  const result = await runCommand('wrk', args, { timeoutMs: (run.seconds + 60) * 1000 });
  const line = result.stdout.split('\n').find((l) => l.startsWith('WRKJSON '));
  if (result.code !== 0 || !line)
    throw new Error(`wrk failed (${result.code}): ${result.stderr || result.stdout}`);
  const parsed = JSON.parse(line.slice('WRKJSON '.length)) as WrkResult;
  const seconds = parsed.durationUs / 1e6;
  return { ...parsed, requestsPerSecond: parsed.requests / seconds, bytesPerSecond: parsed.bytes / seconds };
}

export function errorCount(r: WrkResult): number {
  const e = r.errors;
  return e.connect + e.read + e.write + e.status + e.timeout;
}
