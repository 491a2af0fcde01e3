import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { request } from 'undici';
// eslint-disable-next-line no-restricted-imports
import {
  createContainerToolsSandbox,
  prepareSeededStorage,
  runCommand,
  SeedInfo,
  seedImage,
} from '../../libs/testing/src/upstream';
import { demoPaths, REPO_ROOT, RegistryInfo } from './paths';
import { DemoStepError, Progress } from './progress';

// The demo driver, run by scripts/demo.sh after setup and build. It starts a local upstream
// registry with sample images and the built gateway in front of it (both detached, stopped by
// scripts/demo-stop.sh), creates a member with an access key and an entitlement through the CLI,
// pulls an image through the gateway with skopeo and shows the audit trail of that pull.

const REPOSITORY = 'acme/app';
const TAG = 'v1.0.0';
/** A tag of the same repository the demo member is not entitled to. */
const UNENTITLED_TAG = 'v1.1.0';
const MEMBER = 'demo';

const { values: args } = parseArgs({
  options: { 'first-step': { type: 'string', default: '1' }, total: { type: 'string', default: '6' } },
});
const progress = new Progress(Number(args['first-step']), Number(args.total));
const port = Number(process.env.DEMO_PORT || 8080);
const service = `localhost:${port}`;
const gatewayUrl = `http://127.0.0.1:${port}`;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
/** The admin API's bearer token for this demo (verify-oci's audit row reads /admin/audit). */
const adminToken = randomBytes(24).toString('hex');

function pidAlive(pid: number): boolean {
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

function demoEnvironment(registry: RegistryInfo): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of gatewayVariableNames()) delete env[name];
  return {
    ...env,
    PORT: String(port),
    // Loopback only: the demo's member credentials are printed on the screen.
    HOST: '127.0.0.1',
    LOG_LEVEL: 'info',
    DATA_DIR: demoPaths.dataDir,
    FORGEJO_BASE_URL: registry.url,
    FORGEJO_API_USERNAME: registry.username,
    FORGEJO_API_TOKEN: registry.password,
    OCI_REGISTRY_SERVICE: service,
    OCI_REGISTRY_REALM: `http://${service}/auth/token`,
    // Sample tags change never; the demo does not need to re-check them often.
    OCI_TAG_TTL_SECONDS: '60',
    ADMIN_TOKEN: adminToken,
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

async function portIsFree(p: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(p, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

async function prepareSamples(): Promise<SeedInfo> {
  return prepareSeededStorage();
}

async function startUpstream(): Promise<RegistryInfo> {
  const pid = detached(
    ['-r', '@swc-node/register', join(__dirname, 'upstream-registry.ts')],
    demoPaths.registryLog,
    process.env,
  );
  writeFileSync(demoPaths.registryPid, `${pid}\n`);
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (existsSync(demoPaths.registryInfo)) {
      return JSON.parse(readFileSync(demoPaths.registryInfo, 'utf8')) as RegistryInfo;
    }
    if (!pidAlive(pid))
      throw new DemoStepError('the registry process exited during start', demoPaths.registryLog);
    await sleep(100);
  }
  throw new DemoStepError('the registry did not come up within 60 s', demoPaths.registryLog);
}

const portBusy = () =>
  `port ${port} is already in use on 127.0.0.1. Fix: stop what listens there, or run DEMO_PORT=<free port> bash scripts/demo.sh`;

/** Stops what this run started (scripts/demo-stop.sh signals only the processes of its pid files). */
async function stopStarted(): Promise<void> {
  await runCommand('bash', [join(REPO_ROOT, 'scripts/demo-stop.sh')], { timeoutMs: 60_000 }).catch(
    () => undefined,
  );
}

async function startGateway(env: NodeJS.ProcessEnv): Promise<number> {
  // Checked before anything starts too; the port may have been taken while the registry started.
  // Nothing is left to inspect then: the registry is stopped again.
  if (!(await portIsFree(port))) {
    await stopStarted();
    throw new DemoStepError(`${portBusy()} (the registry this run started was stopped again)`);
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
      const res = await request(`${gatewayUrl}/readyz`, { headersTimeout: 2000, bodyTimeout: 2000 });
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

/** Runs the built CLI against the demo's data directory; output goes to the CLI log too. */
async function cli(env: NodeJS.ProcessEnv, cliArgs: string[]): Promise<string> {
  const result = await runCommand(process.execPath, [join(REPO_ROOT, 'bin/gatehouse.js'), ...cliArgs], {
    env,
    timeoutMs: 60_000,
  });
  const record = `$ gatehouse ${cliArgs.join(' ')}\n${result.stdout}${result.stderr}(exit ${result.code})\n\n`;
  writeFileSync(demoPaths.cliLog, record, { flag: 'a' });
  if (result.code !== 0) {
    throw new DemoStepError(
      `gatehouse ${cliArgs.join(' ')} exited with ${result.code}: ${(result.stderr || result.stdout).trim()}`,
      demoPaths.cliLog,
    );
  }
  return result.stdout;
}

async function cliCommands(env: NodeJS.ProcessEnv): Promise<string> {
  const result = await runCommand(process.execPath, [join(REPO_ROOT, 'bin/gatehouse.js'), '--help'], { env });
  return result.stdout;
}

interface Enrolment {
  key: string;
}

async function enrol(env: NodeJS.ProcessEnv): Promise<Enrolment> {
  const help = await cliCommands(env);
  const missing = ['member', 'key', 'grant'].filter((c) => !new RegExp(`^\\s+${c}\\b`, 'm').test(help));
  if (missing.length > 0) {
    throw new DemoStepError(
      `this build of the CLI has no ${missing.join(', ')} command${missing.length > 1 ? 's' : ''} yet (gatehouse --help lists the available ones)`,
    );
  }
  await cli(env, ['member', 'create', MEMBER]);
  const key = parseAccessKey(await cli(env, ['key', 'create', MEMBER, '--format', 'json']));
  await cli(env, ['grant', MEMBER, REPOSITORY, '--tags', TAG]);
  writeFileSync(demoPaths.accessKey, `${key}\n`, { mode: 0o600 });
  writeFileSync(demoPaths.adminToken, `${adminToken}\n`, { mode: 0o600 });
  return { key };
}

/** The secret from `gatehouse key create --format json`. */
function parseAccessKey(stdout: string): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(stdout);
  } catch {
    throw new DemoStepError(`gatehouse key create --format json printed no JSON`, demoPaths.cliLog);
  }
  const record = parsed as Record<string, unknown>;
  for (const field of ['secret', 'key', 'accessKey', 'access_key']) {
    if (typeof record[field] === 'string' && record[field]) return record[field] as string;
  }
  throw new DemoStepError(`gatehouse key create --format json printed no secret field`, demoPaths.cliLog);
}

interface PullResult {
  digest: string;
  manifests: number;
}

async function pull(key: string, seed: SeedInfo): Promise<PullResult> {
  const sandbox = await createContainerToolsSandbox();
  try {
    const skopeoArgs = [
      'copy',
      '--all',
      '--src-tls-verify=false',
      '--src-creds',
      `${MEMBER}:${key}`,
      `docker://${service}/${REPOSITORY}:${TAG}`,
      `oci:${demoPaths.pulled}:${TAG}`,
    ];
    const result = await sandbox.skopeo(skopeoArgs, { timeoutMs: 180_000 });
    writeFileSync(
      demoPaths.pullLog,
      `$ skopeo --insecure-policy ${skopeoArgs.join(' ').replace(key, '<access key>')}\n${result.stdout}${result.stderr}(exit ${result.code})\n`,
    );
    if (result.code !== 0) {
      throw new DemoStepError(
        `skopeo exited with ${result.code}: ${result.stderr.trim().split('\n').pop()}. The gateway log says why: ${demoPaths.gatewayLog}`,
        demoPaths.pullLog,
      );
    }
  } finally {
    await sandbox.cleanup();
  }
  // The OCI layout now names the pulled index; it must be byte-identical to the upstream one.
  const index = JSON.parse(readFileSync(join(demoPaths.pulled, 'index.json'), 'utf8')) as {
    manifests: Array<{ digest: string; annotations?: Record<string, string> }>;
  };
  const entry = index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === TAG);
  const expected = seedImage(seed, REPOSITORY, TAG);
  if (!entry) throw new DemoStepError(`the pulled layout has no ${TAG}`, demoPaths.pullLog);
  if (entry.digest !== expected.digest) {
    throw new DemoStepError(
      `pulled ${entry.digest}, but upstream serves ${expected.digest} for ${REPOSITORY}:${TAG}`,
      demoPaths.pullLog,
    );
  }
  return { digest: entry.digest, manifests: expected.manifests.length };
}

interface AuditView {
  title: string;
  text: string;
}

async function auditTrail(env: NodeJS.ProcessEnv): Promise<AuditView> {
  const help = await cliCommands(env);
  if (/^\s+audit\b/m.test(help)) {
    return {
      title: `gatehouse audit --member ${MEMBER}`,
      text: await cli(env, ['audit', '--member', MEMBER]),
    };
  }
  // Without the audit command, the member view is the closest the CLI offers: the key's
  // last-used time shows the pull was authenticated with it.
  return {
    title: `gatehouse member show ${MEMBER} (this CLI build has no \`gatehouse audit\` command yet)`,
    text: await cli(env, ['member', 'show', MEMBER]),
  };
}

async function main(): Promise<void> {
  mkdirSync(demoPaths.dataDir, { recursive: true });
  if (!(await portIsFree(port))) {
    process.stderr.write(`\n${portBusy()}\nNothing was started.\n`);
    process.exit(1);
  }

  const seed = await progress.step('preparing the sample images', prepareSamples, (s) =>
    Object.keys(s.tags).join(', '),
  );
  const registry = await progress.step(
    'starting the upstream registry (htpasswd Basic auth)',
    startUpstream,
    (r) => r.url,
  );
  const env = demoEnvironment(registry);
  await progress.step(
    `starting the gateway on ${service}`,
    () => startGateway(env),
    (pid) => `pid ${pid}`,
  );
  const { key } = await progress.step(
    `creating member "${MEMBER}", an access key and an entitlement to ${REPOSITORY}:${TAG}`,
    () => enrol(env),
  );
  await progress.step(
    `pulling ${service}/${REPOSITORY}:${TAG} with skopeo`,
    () => pull(key, seed),
    (p) => `${p.digest.slice(0, 19)}…, ${p.manifests} platforms, digest matches upstream`,
  );
  // Give the audit writer a moment: rows are batched off the request path.
  const audit = await progress.step('reading the audit trail', async () => {
    await sleep(1500);
    return auditTrail(env);
  });

  const log = (s = ''): void => void process.stdout.write(`${s}\n`);
  log();
  log(`$ ${audit.title}`);
  log(audit.text.trimEnd());
  log();
  log(`Gatehouse is running at http://${service} (log: ${demoPaths.gatewayLog}).`);
  log(`Upstream registry: ${registry.url} (access log: ${demoPaths.registryAccessLog}).`);
  log();
  log(`Try it with docker. This gateway speaks plain HTTP: dockerd allows that for localhost and`);
  log(`127.0.0.0/8 only; for any other host add it to "insecure-registries" in dockerd's daemon.json`);
  log(`and restart dockerd (or put TLS in front).`);
  log(`  docker login ${service} -u ${MEMBER} -p ${key}`);
  log(`  docker pull ${service}/${REPOSITORY}:${TAG}`);
  log(
    `  docker pull ${service}/${REPOSITORY}:${UNENTITLED_TAG}     # refused: not entitled (MANIFEST_UNKNOWN)`,
  );
  log(`  docker manifest inspect --insecure ${service}/${REPOSITORY}:${TAG}`);
  log(`    (the client itself reads the registry there, not dockerd: --insecure allows plain HTTP)`);
  log(`or with podman / skopeo: add --tls-verify=false.`);
  log(`The operator CLI against this instance:`);
  log(`  DATA_DIR=${demoPaths.dataDir} bin/gatehouse --help`);
  log();
  log(`Verify it end to end as a member would (every row, the audit row included):`);
  log(`  ${verifyOciLine()}`);
  log();
  log('Stop it with: bash scripts/demo-stop.sh   (or: npx just demo-stop)');
  log(`(The access key is also in ${demoPaths.accessKey}, the ADMIN_TOKEN in ${demoPaths.adminToken}.)`);
}

/** The exact `just verify-oci` command for this demo; the secrets are read from their files. */
function verifyOciLine(): string {
  const rel = (p: string) => p.slice(REPO_ROOT.length + 1);
  return [
    `VERIFY_OCI_URL=http://${service}`,
    `VERIFY_OCI_USERNAME=${MEMBER}`,
    `VERIFY_OCI_PASSWORD="$(cat ${rel(demoPaths.accessKey)})"`,
    `VERIFY_OCI_IMAGE=${REPOSITORY}:${TAG}`,
    `VERIFY_OCI_UNENTITLED_TAG=${UNENTITLED_TAG}`,
    `VERIFY_OCI_ADMIN_URL=http://${service}`,
    `VERIFY_OCI_ADMIN_TOKEN="$(cat ${rel(demoPaths.adminToken)})"`,
    'npx just verify-oci',
  ].join(' ');
}

main().catch((err: unknown) => {
  process.stderr.write(`demo failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
