import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import { connect } from 'node:net';
import { getFreePort } from '../upstream/ports';
import { trackChild, waitForExit } from '../upstream/process-registry';
import { makeTempDir, TempDir } from '../upstream/tmp';

/** Set to use an existing NATS server with JetStream (nats://host:port) instead of starting one. */
export const EXTERNAL_TEST_NATS_URL_ENV = 'TEST_NATS_URL';

export interface TestNats {
  url: string;
  stop(): Promise<void>;
}

/**
 * A real NATS server with JetStream for a test: TEST_NATS_URL when set, otherwise Debian's
 * `nats-server -js` on a free loopback port with its own store directory. Fails with one line
 * when nats-server is missing.
 */
export async function startTestNats(): Promise<TestNats> {
  const external = process.env[EXTERNAL_TEST_NATS_URL_ENV];
  if (external) return { url: external, stop: async () => undefined };
  // Debian installs it in /usr/sbin, which is not on every user's PATH.
  const binary = ['nats-server', '/usr/sbin/nats-server'].find((b) => !spawnSync(b, ['--version']).error);
  if (!binary)
    throw new Error('nats-server not found: install Debian package nats-server (scripts/setup.sh does)');
  const port = await getFreePort();
  const store: TempDir = await makeTempDir('nats');
  const child: ChildProcess = spawn(
    binary,
    ['-js', '-a', '127.0.0.1', '-p', String(port), '-sd', store.path],
    { stdio: 'ignore' },
  );
  trackChild(child);
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`nats-server exited (${child.exitCode}) on port ${port}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1', () => {
        s.end();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) break;
    if (Date.now() > deadline) throw new Error(`nats-server did not listen on port ${port} within 10 s`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url: `nats://127.0.0.1:${port}`,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await waitForExit(child, 5_000);
      }
      await store.cleanup();
    },
  };
}
