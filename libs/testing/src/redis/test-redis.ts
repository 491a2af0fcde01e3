import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import { connect } from 'node:net';
import { getFreePort } from '../upstream/ports';
import { trackChild, waitForExit } from '../upstream/process-registry';

/** Set to use an existing Redis (e.g. redis://127.0.0.1:6379/15) instead of starting one. */
export const EXTERNAL_TEST_REDIS_URL_ENV = 'TEST_REDIS_URL';

export interface TestRedis {
  url: string;
  port: number;
  /** Stops the server (SIGKILL, as an outage looks); `start` brings it back on the same port. */
  kill(): Promise<void>;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * A real Redis for a test: TEST_REDIS_URL when set, otherwise Debian's `redis-server` on a free
 * loopback port, in memory only (no RDB, no AOF). Fails with one line when redis-server is
 * missing.
 */
export async function startTestRedis(): Promise<TestRedis> {
  const external = process.env[EXTERNAL_TEST_REDIS_URL_ENV];
  if (external) {
    const port = Number(new URL(external).port || 6379);
    const noop = async () => undefined;
    return { url: external, port, kill: noop, start: noop, stop: noop };
  }
  if (spawnSync('redis-server', ['--version']).error)
    throw new Error('redis-server not found: install Debian package redis-server (scripts/setup.sh does)');
  const port = await getFreePort();
  let child: ChildProcess | undefined;
  const start = async (): Promise<void> => {
    child = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      { stdio: 'ignore' },
    );
    trackChild(child);
    await waitListening(port, child);
  };
  const kill = async (): Promise<void> => {
    const c = child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    c.kill('SIGKILL');
    await waitForExit(c, 5_000);
  };
  await start();
  return { url: `redis://127.0.0.1:${port}`, port, kill, start, stop: kill };
}

async function waitListening(port: number, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`redis-server exited (${child.exitCode}) on port ${port}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1', () => {
        s.end();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`redis-server did not listen on port ${port} within 10 s`);
}
