import { randomBytes } from 'node:crypto';
import { copyFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
// The seeded registry comes from the test harness; importing its upstream module directly avoids
// loading the whole harness (test PostgreSQL, test gateway) into a long-running process.
// eslint-disable-next-line no-restricted-imports
import { prepareSeededStorage, startRegistry } from '../../libs/testing/src/upstream';
import { demoPaths, RegistryInfo } from './paths';

/**
 * Keeps the demo's upstream registry alive after the demo driver exits. The harness ties a
 * registry to the process that started it (killed and its storage copy removed on exit), so
 * this small process owns it and stops it cleanly on SIGTERM from scripts/demo-stop.sh.
 *
 * The registry is the CNCF distribution registry with htpasswd Basic auth, serving a private
 * copy of the seeded sample images: the same kind of upstream the gateway meets in its tests.
 */
async function main(): Promise<void> {
  const seed = await prepareSeededStorage();
  // Shaped like a Forgejo access token (40 lowercase hex), which is what operators will paste.
  const credentials = { username: 'gatehouse-service', password: randomBytes(20).toString('hex') };
  const registry = await startRegistry({ copyFrom: seed.storageDir, htpasswd: credentials });

  let stopping = false;
  const stop = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    console.log(`${new Date().toISOString()} ${signal}: stopping the registry`);
    rmSync(demoPaths.registryInfo, { force: true });
    // The access log lives in the registry's working directory, removed when it stops: keep a copy.
    rmSync(demoPaths.registryAccessLog, { force: true });
    try {
      copyFileSync(registry.logFile, demoPaths.registryAccessLog);
    } catch {
      // Nothing logged yet.
    }
    await registry.stop();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGHUP', () => void stop('SIGHUP'));

  const info: RegistryInfo = {
    url: registry.url,
    hostPort: registry.hostPort,
    port: registry.port,
    username: credentials.username,
    password: credentials.password,
    logFile: registry.logFile,
  };
  writeFileSync(demoPaths.registryInfo, JSON.stringify(info, null, 2) + '\n', { mode: 0o600 });
  console.log(`${new Date().toISOString()} registry ${registry.url} serving ${seed.storageDir}`);
  rmSync(demoPaths.registryAccessLog, { force: true });
  symlinkSync(registry.logFile, demoPaths.registryAccessLog);
  console.log(`${new Date().toISOString()} registry access log: ${demoPaths.registryAccessLog}`);

  // If the registry dies on its own, exit too, so the pid file never names a useless keeper.
  const watch = setInterval(() => {
    if (!registry.isRunning() && !stopping) {
      console.error(`${new Date().toISOString()} the registry exited; see ${registry.logFile}`);
      clearInterval(watch);
      rmSync(demoPaths.registryInfo, { force: true });
      process.exit(1);
    }
  }, 1000);
}

main().catch((err: unknown) => {
  console.error(`${new Date().toISOString()} ${(err as Error).stack ?? String(err)}`);
  process.exit(1);
});
