import { renameSync, rmSync, writeFileSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
// The seeded upstream comes from the test harness; importing its upstream module directly avoids
// loading the whole harness (test PostgreSQL, test gateway) into a long-running process.
// eslint-disable-next-line no-restricted-imports
import {
  createContainerToolsSandbox,
  generatePat,
  generateSigstoreKey,
  OCI_INDEX,
  prepareSeededStorage,
  pushArtifact,
  pushManifest,
  seedDownloads,
  seedImage,
  signInRegistry,
  sigstoreTools,
  startForgejoFront,
  startRegistry,
} from '../../libs/testing/src/upstream';
import { DEMO, demoPaths, RegistryInfo } from './paths';

const SPDX = 'application/spdx+json';

/**
 * Keeps the demo's upstream alive after the demo driver exits, and stops it cleanly on SIGTERM
 * from scripts/demo-stop.sh. It is the upstream the tests use: Debian's docker-registry holding
 * the seeded sample images, behind the Forgejo front (libs/testing), which answers like Forgejo
 * (token, errors, the releases API, generic packages). Before it announces itself it adds what
 * the demo shows: a sigstore signature and an SPDX SBOM of the multi-arch image
 * `acme/app:v1.0.0`, the releases of `acme/tool` and the generic package `acme/cli`.
 *
 * DEMO_REGISTRY_PORT pins the front's port (default: a free one); the registry behind it is
 * reached by the front only.
 */
async function main(): Promise<void> {
  const port = Number(process.env.DEMO_REGISTRY_PORT || 0);
  const gatewayService = process.env.DEMO_GATEWAY_SERVICE ?? 'localhost:8080';
  const seed = await prepareSeededStorage();
  const registry = await startRegistry({ copyFrom: seed.storageDir });
  const pat = generatePat();
  log(`registry ${registry.url} serving a copy of ${seed.storageDir}`);

  // Sign as a vendor signs in Forgejo: a sigstore attachment at sha256-<hex>.sig, for the name
  // the members pull (the gateway's).
  const sigstore = await sigstoreTools();
  const tools = await createContainerToolsSandbox();
  const image = seedImage(seed, DEMO.image.repository, DEMO.image.tag);
  try {
    const key = await generateSigstoreKey(sigstore, tools.dir, { env: tools.env });
    const vendorConf = join(tools.dir, 'registries.vendor.d');
    await mkdir(vendorConf);
    await writeFile(
      join(vendorConf, 'upstream.yaml'),
      `docker:\n  ${registry.hostPort}:\n    use-sigstore-attachments: true\n`,
    );
    await signInRegistry(sigstore, {
      hostPort: registry.hostPort,
      repository: DEMO.image.repository,
      tag: DEMO.image.tag,
      identity: `${gatewayService}/${DEMO.image.repository}:${DEMO.image.tag}`,
      key,
      registriesDir: vendorConf,
      env: tools.env,
    });
    writeFileSync(demoPaths.signingPublicKey, await readFile(key.publicKeyPath, 'utf8'));
    log(`signed ${DEMO.image.repository}:${DEMO.image.tag} (${image.digest})`);
  } finally {
    await tools.cleanup();
  }
  // An SBOM by digest, listed by the OCI 1.1 tag schema (the index at sha256-<hex>), which is
  // how a registry without the referrers API (Forgejo) carries referrers.
  const subject = { digest: image.digest, size: image.size, mediaType: image.mediaType };
  const sbom = await pushArtifact(registry.url, DEMO.image.repository, {
    subject,
    artifactType: SPDX,
    layerMediaType: SPDX,
    payload: JSON.stringify({ spdxVersion: 'SPDX-2.3', name: DEMO.image.repository, packages: [] }),
  });
  await pushManifest(registry.url, DEMO.image.repository, `sha256-${image.digest.slice(7)}`, {
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: [{ mediaType: sbom.mediaType, digest: sbom.digest, size: sbom.size, artifactType: SPDX }],
  });
  log(`SBOM ${sbom.digest} refers to ${image.digest}`);

  const front = await startForgejoFront({
    port,
    upstreamUrl: registry.url,
    knownOwners: ['acme'],
    tokens: { [pat]: { scopes: ['read:package', 'read:repository'], user: 'gatehouse-service' } },
    log: (line) => log(line),
  }).catch(async (e: NodeJS.ErrnoException) => {
    await registry.stop();
    if (e.code === 'EADDRINUSE')
      throw new Error(`DEMO_REGISTRY_PORT=${port} is in use on 127.0.0.1: choose a free port`);
    throw e;
  });
  seedDownloads(front);

  let stopping = false;
  const stop = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    log(`${signal}: stopping the upstream`);
    rmSync(demoPaths.registryInfo, { force: true });
    await front.stop();
    await registry.stop();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGHUP', () => void stop('SIGHUP'));

  const info: RegistryInfo = {
    url: front.url,
    hostPort: front.hostPort,
    port: front.port,
    username: 'gatehouse-service',
    password: pat,
    registryUrl: registry.url,
    imageDigest: image.digest,
    sbomDigest: sbom.digest,
  };
  // Whole or not at all: the demo driver polls for this file and reads it as soon as it exists.
  writeFileSync(`${demoPaths.registryInfo}.tmp`, JSON.stringify(info, null, 2) + '\n', { mode: 0o600 });
  renameSync(`${demoPaths.registryInfo}.tmp`, demoPaths.registryInfo);
  log(`Forgejo front ${front.url} (the gateway's FORGEJO_BASE_URL)`);

  // If the registry dies on its own, exit too, so the pid file never names a useless keeper.
  const watch = setInterval(() => {
    if (!registry.isRunning() && !stopping) {
      log(`the registry exited; see ${registry.logFile}`);
      clearInterval(watch);
      rmSync(demoPaths.registryInfo, { force: true });
      process.exit(1);
    }
  }, 1000);
}

function log(line: string): void {
  console.log(`${new Date().toISOString()} ${line}`);
}

main().catch((err: unknown) => {
  console.error(`${new Date().toISOString()} ${(err as Error).stack ?? String(err)}`);
  process.exit(1);
});
