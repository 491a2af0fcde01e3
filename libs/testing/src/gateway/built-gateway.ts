import { ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';

const builtMain = join(resolve(__dirname, '../../../..'), 'dist/apps/gateway/src/main.js');

// Settings a developer's shell or CI may export that would point the child at their own
// database, upstream or data; the test passes what it means instead.
const INHERITED_SETTINGS = /^(DATABASE_URL|REDIS_URL|FORGEJO_|OCI_|PORT$|DATA_DIR$|TRUST_PROXY$)/;

export interface BuiltGateway {
  child: ChildProcess;
  /** stdout and stderr so far, interleaved as they arrived. */
  output(): string;
  /** The exit code (null when killed by a signal). */
  exited: Promise<number | null>;
  /**
   * Resolves once GET `<baseUrl>/healthz` answers 200; rejects, with the output so far, as soon
   * as the process exits or after `timeoutMs`.
   */
  waitUntilHealthy(baseUrl: string, timeoutMs?: number): Promise<void>;
}

/** The built gateway as operators run it (npm start): dist/ main.js with a clean environment plus `env`. */
export function startBuiltGateway(env: Record<string, string>): BuiltGateway {
  if (!existsSync(builtMain))
    throw new Error(`${builtMain} is missing: run npm run build first (scripts/test.sh does)`);
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !INHERITED_SETTINGS.test(k)));
  let out = '';
  const child = spawn(process.execPath, [builtMain], {
    env: { ...clean, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (d) => (out += String(d)));
  child.stderr!.on('data', (d) => (out += String(d)));
  let exitCode: number | null | undefined;
  const exited = new Promise<number | null>((r) =>
    child.once('exit', (code) => {
      exitCode = code;
      r(code);
    }),
  );
  const output = () => out;

  const waitUntilHealthy = async (baseUrl: string, timeoutMs = 60_000): Promise<void> => {
    const url = `${baseUrl}/healthz`;
    const until = Date.now() + timeoutMs;
    for (;;) {
      if (exitCode !== undefined)
        throw new Error(`the gateway exited with code ${exitCode}; its output:\n${output()}`);
      const status = await fetch(url).then(
        (r) => r.status,
        () => null,
      );
      if (status === 200) return;
      if (Date.now() > until)
        throw new Error(`${url} did not answer 200 within ${timeoutMs} ms; its output:\n${output()}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  };

  return { child, output, exited, waitUntilHealthy };
}
