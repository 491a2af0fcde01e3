import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { request } from 'undici';
// eslint-disable-next-line no-restricted-imports
import { CommandResult, runCommand } from '../../libs/testing/src/upstream/clients';
import { demoPaths, REPO_ROOT, RegistryInfo } from './paths';
import { DemoStepError } from './progress';

/** The demo's ports and names; DEMO_PORT, DEMO_REGISTRY_PORT and DEMO_DATABASE_PORT pin them. */
export interface DemoSettings {
  port: number;
  /** 0: a free port chosen by the upstream. */
  registryPort: number;
  /** 0: a free port chosen by the embedded PostgreSQL at each start. */
  databasePort: number;
  service: string;
  gatewayUrl: string;
  adminToken: string;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The gateway variables a developer may have exported; the demo sets its own and nothing else. */
function gatewayVariableNames(): string[] {
  const text = readFileSync(join(REPO_ROOT, '.env.example'), 'utf8');
  return [...text.matchAll(/^([A-Z][A-Z0-9_]*)=/gm)].map((m) => m[1]);
}

export function demoEnvironment(s: DemoSettings, registry: RegistryInfo): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of gatewayVariableNames()) delete env[name];
  return {
    ...env,
    PORT: String(s.port),
    // Loopback only: the demo's member credentials are printed on the screen.
    HOST: '127.0.0.1',
    LOG_LEVEL: 'info',
    DATA_DIR: demoPaths.dataDir,
    DATABASE_EMBEDDED_PORT: String(s.databasePort),
    FORGEJO_BASE_URL: registry.url,
    FORGEJO_API_USERNAME: registry.username,
    FORGEJO_API_TOKEN: registry.password,
    OCI_REGISTRY_SERVICE: s.service,
    OCI_REGISTRY_REALM: `http://${s.service}/auth/token`,
    // Sample tags change never; the demo does not need to re-check them often.
    OCI_TAG_TTL_SECONDS: '60',
    ADMIN_TOKEN: s.adminToken,
  };
}

function detached(script: string[], logFile: string, env: NodeJS.ProcessEnv): number {
  const fd = openSync(logFile, 'a');
  try {
    const child = spawn(process.execPath, script, {
      cwd: REPO_ROOT,
      env,
      detached: true,
      stdio: ['ignore', fd, fd],
    });
    child.unref();
    if (child.pid === undefined) throw new DemoStepError(`could not start ${script.join(' ')}`, logFile);
    return child.pid;
  } finally {
    closeSync(fd);
  }
}

export async function portIsFree(p: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(p, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** Why a pinned port cannot be used, and the variable that moves it. */
export function portBusy(p: number, variable: string): string {
  return `port ${p} is already in use on 127.0.0.1. Fix: stop what listens there, or run ${variable}=<free port> bash scripts/demo.sh`;
}

/** The upstream keeper (upstream-registry.ts): the seeded Forgejo front, detached. */
export async function startUpstream(s: DemoSettings): Promise<RegistryInfo> {
  const pid = detached(
    ['-r', '@swc-node/register', join(__dirname, 'upstream-registry.ts')],
    demoPaths.registryLog,
    {
      ...process.env,
      DEMO_REGISTRY_PORT: String(s.registryPort),
      DEMO_GATEWAY_SERVICE: s.service,
    },
  );
  writeFileSync(demoPaths.registryPid, `${pid}\n`);
  // Signing fetches the sigstore tools on a machine that has not got them yet.
  const deadline = Date.now() + 300_000;
  while (Date.now() < deadline) {
    if (existsSync(demoPaths.registryInfo)) {
      return JSON.parse(readFileSync(demoPaths.registryInfo, 'utf8')) as RegistryInfo;
    }
    if (!pidAlive(pid)) throw new DemoStepError('the upstream exited during start', demoPaths.registryLog);
    await sleep(100);
  }
  throw new DemoStepError('the upstream did not come up within 300 s', demoPaths.registryLog);
}

/** Stops what this run started (scripts/demo-stop.sh signals only the processes of its pid files). */
export async function stopStarted(): Promise<void> {
  await runCommand('bash', [join(REPO_ROOT, 'scripts/demo-stop.sh')], { timeoutMs: 60_000 }).catch(
    () => undefined,
  );
}

export async function startGateway(s: DemoSettings, env: NodeJS.ProcessEnv): Promise<number> {
  // Checked before anything starts too; the port may have been taken while the upstream started.
  // Nothing is left to inspect then: the upstream is stopped again.
  for (const [p, variable] of [
    [s.port, 'DEMO_PORT'],
    [s.databasePort, 'DEMO_DATABASE_PORT'],
  ] as const) {
    if (p && !(await portIsFree(p))) {
      await stopStarted();
      throw new DemoStepError(`${portBusy(p, variable)} (the upstream this run started was stopped again)`);
    }
  }
  const main = join(REPO_ROOT, 'dist/apps/gateway/src/main.js');
  if (!existsSync(main)) throw new DemoStepError(`${main} is missing: the build did not produce the gateway`);
  const pid = detached([main], demoPaths.gatewayLog, env);
  writeFileSync(demoPaths.gatewayPid, `${pid}\n`);
  // The first start initialises the embedded PostgreSQL and runs the migrations.
  const deadline = Date.now() + 120_000;
  let last = 'no answer yet';
  while (Date.now() < deadline) {
    if (!pidAlive(pid)) throw new DemoStepError('the gateway exited during start', demoPaths.gatewayLog);
    try {
      const res = await request(`${s.gatewayUrl}/readyz`, { headersTimeout: 2000, bodyTimeout: 2000 });
      const body = await res.body.text();
      if (res.statusCode === 200) return pid;
      last = `${res.statusCode} ${body.slice(0, 300)}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await sleep(250);
  }
  throw new DemoStepError(
    `the gateway was not ready within 120 s (last /readyz: ${last})`,
    demoPaths.gatewayLog,
  );
}

/** The embedded PostgreSQL's URL port, as the gateway published it (`DATA_DIR/postgres.json`). */
export function databasePort(): number | null {
  try {
    const owner = JSON.parse(readFileSync(join(demoPaths.dataDir, 'postgres.json'), 'utf8')) as {
      url?: string;
    };
    return owner.url ? Number(new URL(owner.url).port) : null;
  } catch {
    return null;
  }
}

/** Runs the built CLI against the demo's data directory; every run goes to the CLI log too. */
export async function cliRun(env: NodeJS.ProcessEnv, cliArgs: string[]): Promise<CommandResult> {
  const result = await runCommand(process.execPath, [join(REPO_ROOT, 'bin/gatehouse.js'), ...cliArgs], {
    env,
    timeoutMs: 60_000,
  });
  const record = `$ gatehouse ${cliArgs.join(' ')}\n${result.stdout}${result.stderr}(exit ${result.code})\n\n`;
  writeFileSync(demoPaths.cliLog, record, { flag: 'a' });
  return result;
}

/** `cliRun`, failing the step unless the command exits 0. */
export async function cli(env: NodeJS.ProcessEnv, cliArgs: string[]): Promise<string> {
  const result = await cliRun(env, cliArgs);
  if (result.code !== 0) {
    throw new DemoStepError(
      `gatehouse ${cliArgs.join(' ')} exited with ${result.code}: ${(result.stderr || result.stdout).trim()}`,
      demoPaths.cliLog,
    );
  }
  return result.stdout;
}
