import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { relative } from 'node:path';
import { parseArgs } from 'node:util';
// eslint-disable-next-line no-restricted-imports
import { prepareSeededStorage, SeedInfo } from '../../libs/testing/src/upstream';
import { demoPaths, REPO_ROOT } from './paths';
import {
  cli,
  databasePort,
  DemoSettings,
  demoEnvironment,
  portBusy,
  portIsFree,
  sleep,
  startGateway,
  startUpstream,
} from './processes';
import { Progress } from './progress';
import { DEMO, downloadUrls, targets } from './targets';
import { checkSignature, download, enrol, pull, refusals } from './tryouts';

// The demo driver, run by scripts/demo.sh after setup and build. It starts the upstream the
// tests use (the Forgejo front over Debian's docker-registry, seeded with a signed multi-arch
// image with an SBOM, releases and a generic package) and the built gateway in front of it (both
// detached, stopped by scripts/demo-stop.sh), enrols a member entitled to one target of each
// kind, and shows every surface working: a pull, a download and a resumed one, a signature
// check, and one refusal of each kind beside `gatehouse explain`'s verdict on it.

const { values: args } = parseArgs({
  options: { 'first-step': { type: 'string', default: '1' }, total: { type: 'string', default: '9' } },
});
const progress = new Progress(Number(args['first-step']), Number(args.total));

function settings(): DemoSettings {
  const port = Number(process.env.DEMO_PORT || 8080);
  const service = `localhost:${port}`;
  return {
    port,
    registryPort: Number(process.env.DEMO_REGISTRY_PORT || 0),
    databasePort: Number(process.env.DEMO_DATABASE_PORT || 0),
    service,
    gatewayUrl: `http://127.0.0.1:${port}`,
    // The admin API's bearer token for this demo (verify-oci's audit row reads /admin/audit).
    adminToken: randomBytes(24).toString('hex'),
  };
}

const rel = (p: string) => relative(REPO_ROOT, p);
const log = (s = ''): void => void process.stdout.write(`${s}\n`);

async function main(): Promise<void> {
  const s = settings();
  mkdirSync(demoPaths.dataDir, { recursive: true });
  for (const [p, variable] of [
    [s.port, 'DEMO_PORT'],
    [s.registryPort, 'DEMO_REGISTRY_PORT'],
    [s.databasePort, 'DEMO_DATABASE_PORT'],
  ] as const) {
    if (p && !(await portIsFree(p))) {
      process.stderr.write(`\n${portBusy(p, variable)}\nNothing was started.\n`);
      process.exit(1);
    }
  }

  const seed: SeedInfo = await progress.step('preparing the sample images', prepareSeededStorage, (x) =>
    Object.keys(x.tags).join(', '),
  );
  const registry = await progress.step(
    'starting the upstream: Forgejo front over docker-registry, signing the image, adding an SBOM',
    () => startUpstream(s),
    (r) => `${r.url}, log ${rel(demoPaths.registryLog)}`,
  );
  const env = demoEnvironment(s, registry);
  await progress.step(
    `starting the gateway on ${s.service}`,
    () => startGateway(s, env),
    (pid) => `pid ${pid}, embedded PostgreSQL on 127.0.0.1:${databasePort() ?? '?'}`,
  );
  const { key } = await progress.step(
    `creating member "${DEMO.member}", an access key and one entitlement of each kind`,
    () => enrol(env, s.adminToken),
  );
  const pulled = await progress.step(
    `pulling ${s.service}/${DEMO.image.repository}:${DEMO.image.tag} with skopeo`,
    () => pull(s, key, seed),
    (p) => `${p.digest.slice(0, 19)}…, ${p.manifests} platforms, digest matches upstream`,
  );
  const got = await progress.step(
    `downloading ${DEMO.release.asset} ${DEMO.release.tag} with curl, whole and resumed`,
    () => download(s, key),
    (d) =>
      `${d.bytes} bytes twice (resumed at byte ${d.resumedFrom}), sha256 ${d.sha256.slice(0, 12)}… matches upstream`,
  );
  const signature = await progress.step(
    'verifying the signature with cosign through the gateway, listing referrers',
    () => checkSignature(s, key, registry),
    (v) => `signature of ${v.verified.slice(0, 19)}… verified, ${v.referrers.length} referrer(s)`,
  );
  const refused = await progress.step('one refusal of each kind, and explain on each', () =>
    refusals(s, env, key),
  );
  // Give the audit writer a moment: rows are batched off the request path.
  const audit = await progress.step(`reading the audit trail of ${DEMO.member}`, async () => {
    await sleep(1500);
    return cli(env, ['audit', '--member', DEMO.member, '--limit', '10']);
  });

  report(s, {
    upstreamUrl: registry.url,
    pulledDigest: pulled.digest,
    downloaded: got.bytes,
    refused,
    referrers: signature.referrers,
    audit,
  });
}

function report(
  s: DemoSettings,
  r: {
    upstreamUrl: string;
    pulledDigest: string;
    downloaded: number;
    refused: Awaited<ReturnType<typeof refusals>>;
    referrers: string[];
    audit: string;
  },
): void {
  const urls = downloadUrls(`http://${s.service}`);
  const keyFile = rel(demoPaths.accessKey);
  const user = `-u "${DEMO.member}:$(cat ${keyFile})"`;
  const cli = `DATA_DIR=${rel(demoPaths.dataDir)} bin/gatehouse`;
  log();
  log(`$ gatehouse audit --member ${DEMO.member} --limit 10`);
  log(r.audit.trimEnd());
  log();
  log(`Gatehouse is running at http://${s.service} (log: ${rel(demoPaths.gatewayLog)}).`);
  log(`Upstream (Forgejo front): port ${new URL(r.upstreamUrl).port} (log: ${rel(demoPaths.registryLog)});`);
  log(
    `embedded PostgreSQL: 127.0.0.1:${databasePort() ?? '?'}. Pin them with DEMO_PORT, DEMO_REGISTRY_PORT and`,
  );
  log('DEMO_DATABASE_PORT.');
  log();
  log(`Pull (plain HTTP: dockerd allows it for localhost and 127.0.0.0/8 only; other hosts need`);
  log(`"insecure-registries" in daemon.json, or TLS in front):`);
  log(`  cat ${keyFile} | docker login ${s.service} -u ${DEMO.member} --password-stdin`);
  log(`  docker pull ${s.service}/${DEMO.image.repository}:${DEMO.image.tag}`);
  log(`  (podman / skopeo: add --tls-verify=false; podman login also takes --password-stdin)`);
  log();
  log(
    `Download (curl -C - resumes where the file ends; the demo fetched ${r.downloaded} bytes whole and resumed):`,
  );
  log(`  curl -fLO ${user} ${urls.releaseAsset}`);
  log(`  curl -fLO -C - ${user} ${urls.releaseAsset}`);
  log(`  curl -f ${user} ${urls.releaseList}`);
  log(`  curl -fLO ${user} ${urls.packageFile}`);
  log();
  log(
    `Signature and referrers (after docker login; cosign ${rel(demoPaths.signatureLog)} shows the demo's run):`,
  );
  log(
    `  bash scripts/sigstore-tools.sh cosign verify --key ${rel(demoPaths.signingPublicKey)} --insecure-ignore-tlog=true --allow-http-registry ${s.service}/${DEMO.image.repository}:${DEMO.image.tag}`,
  );
  log(
    `  TOKEN=$(curl -fsS ${user} 'http://${s.service}/auth/token?service=${s.service}&scope=repository:${DEMO.image.repository}:pull' | sed -E 's/.*"token":"([^"]+)".*/\\1/')`,
  );
  log(
    `  curl -fsS -H "Authorization: Bearer $TOKEN" http://${s.service}/v2/${DEMO.image.repository}/referrers/${r.pulledDigest}`,
  );
  for (const line of r.referrers) log(`    lists: ${line}`);
  log();
  log('Refused, one of each kind, and why (the audit row has the same reason):');
  for (const x of r.refused) {
    log(`  ${x.attempt}`);
    log(`    -> ${x.answer}`);
    log(`  ${cli.replace('bin/gatehouse', `bin/gatehouse ${x.explain.slice('gatehouse '.length)}`)}`);
    log(`    -> ${x.verdict}: ${x.memberSees}`);
  }
  log();
  log(`The operator CLI against this instance: ${cli} --help`);
  log(
    `Entitlements: ${targets.image} ${DEMO.image.rules}; ${targets.releases} ${DEMO.release.rules}; ${targets.packages} ${DEMO.package.rules}.`,
  );
  log();
  log('Verify it end to end as a member would (every row, the audit row included):');
  log(`  ${verifyOciLine(s)}`);
  log();
  log('Stop it with: bash scripts/demo-stop.sh   (or: npx just demo-stop)');
  log(`(The access key is in ${keyFile}, the ADMIN_TOKEN in ${rel(demoPaths.adminToken)}.)`);
}

/** The exact `just verify-oci` command for this demo; the secrets are read from their files. */
function verifyOciLine(s: DemoSettings): string {
  return [
    `VERIFY_OCI_URL=http://${s.service}`,
    `VERIFY_OCI_USERNAME=${DEMO.member}`,
    `VERIFY_OCI_PASSWORD="$(cat ${rel(demoPaths.accessKey)})"`,
    `VERIFY_OCI_IMAGE=${DEMO.image.repository}:${DEMO.image.tag}`,
    `VERIFY_OCI_UNENTITLED_TAG=${DEMO.image.refusedTag}`,
    `VERIFY_OCI_ADMIN_URL=http://${s.service}`,
    `VERIFY_OCI_ADMIN_TOKEN="$(cat ${rel(demoPaths.adminToken)})"`,
    'npx just verify-oci',
  ].join(' ');
}

main().catch((err: unknown) => {
  process.stderr.write(`demo failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
