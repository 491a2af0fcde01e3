import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { request } from 'undici';
// eslint-disable-next-line no-restricted-imports
import {
  createContainerToolsSandbox,
  deterministicBytes,
  runCommand,
  SeedInfo,
  seedImage,
  sigstoreTools,
} from '../../libs/testing/src/upstream';
import { cli, cliRun, DemoSettings } from './processes';
import { demoPaths, REPO_ROOT, RegistryInfo } from './paths';
import { DemoStepError } from './progress';
import { DEMO, downloadUrls, targets } from './targets';

/** What a member of the demo holds: the access key (the password of every client). */
export interface Enrolment {
  key: string;
}

export async function enrol(env: NodeJS.ProcessEnv, adminToken: string): Promise<Enrolment> {
  await cli(env, ['member', 'create', DEMO.member]);
  const key = parseAccessKey(await cli(env, ['key', 'create', DEMO.member, '--format', 'json']));
  await cli(env, ['grant', DEMO.member, targets.image, '--tags', DEMO.image.rules]);
  await cli(env, ['grant', DEMO.member, targets.releases, '--tags', DEMO.release.rules]);
  await cli(env, ['grant', DEMO.member, targets.packages, '--tags', DEMO.package.rules]);
  writeFileSync(demoPaths.accessKey, `${key}\n`, { mode: 0o600 });
  writeFileSync(demoPaths.adminToken, `${adminToken}\n`, { mode: 0o600 });
  return { key };
}

/** The secret from `gatehouse key create --format json`. */
function parseAccessKey(stdout: string): string {
  try {
    const secret = (JSON.parse(stdout) as { key?: unknown }).key;
    if (typeof secret === 'string' && secret) return secret;
  } catch {
    // Reported below.
  }
  throw new DemoStepError('gatehouse key create --format json printed no key', demoPaths.cliLog);
}

export interface PullResult {
  digest: string;
  manifests: number;
}

export async function pull(s: DemoSettings, key: string, seed: SeedInfo): Promise<PullResult> {
  const { repository, tag } = DEMO.image;
  const sandbox = await createContainerToolsSandbox();
  try {
    const skopeoArgs = [
      'copy',
      '--all',
      '--src-tls-verify=false',
      '--src-creds',
      `${DEMO.member}:${key}`,
      `docker://${s.service}/${repository}:${tag}`,
      `oci:${demoPaths.pulled}:${tag}`,
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
  const entry = index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === tag);
  const expected = seedImage(seed, repository, tag);
  if (!entry) throw new DemoStepError(`the pulled layout has no ${tag}`, demoPaths.pullLog);
  if (entry.digest !== expected.digest) {
    throw new DemoStepError(
      `pulled ${entry.digest}, but upstream serves ${expected.digest} for ${repository}:${tag}`,
      demoPaths.pullLog,
    );
  }
  return { digest: entry.digest, manifests: expected.manifests.length };
}

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

async function curl(args: string[], logName: string): Promise<void> {
  const r = await runCommand('curl', ['-fsS', ...args], { timeoutMs: 120_000 });
  writeFileSync(
    demoPaths.curlLog,
    `$ curl -fsS ${args.join(' ')}\n${r.stdout}${r.stderr}(exit ${r.code})\n\n`,
    {
      flag: 'a',
    },
  );
  if (r.code !== 0)
    throw new DemoStepError(`curl (${logName}) exited with ${r.code}: ${r.stderr.trim()}`, demoPaths.curlLog);
}

export interface DownloadResult {
  bytes: number;
  resumedFrom: number;
  sha256: string;
}

/**
 * The release asset with curl as a member types it: once whole, once cut short and resumed with
 * `curl -C -`; both must be the upstream's bytes. Then the package file, whole.
 */
export async function download(s: DemoSettings, key: string): Promise<DownloadResult> {
  const urls = downloadUrls(s.gatewayUrl);
  const user = ['-u', `${DEMO.member}:${key}`];
  mkdirSync(demoPaths.downloads, { recursive: true });
  const whole = join(demoPaths.downloads, DEMO.release.asset);
  const resumed = join(demoPaths.downloads, `${DEMO.release.asset}.resumed`);
  await curl([...user, '-o', whole, urls.releaseAsset], 'whole download');
  const expected = readFileSync(whole);
  const cut = Math.floor(expected.length / 3);
  // A download interrupted after `cut` bytes, then resumed where the file ends.
  await curl([...user, '-r', `0-${cut - 1}`, '-o', resumed, urls.releaseAsset], 'first part');
  await curl([...user, '-C', '-', '-o', resumed, urls.releaseAsset], 'resumed download');
  const upstream = deterministicBytes('tool-1.2.0', expected.length);
  const got = readFileSync(resumed);
  if (!expected.equals(upstream) || !got.equals(upstream)) {
    throw new DemoStepError(
      `the downloaded ${DEMO.release.asset} differs from the upstream's (whole ${sha256(expected)}, resumed ${sha256(got)}, upstream ${sha256(upstream)})`,
      demoPaths.curlLog,
    );
  }
  await curl([...user, '-o', join(demoPaths.downloads, DEMO.package.file), urls.packageFile], 'package file');
  return { bytes: got.length, resumedFrom: cut, sha256: sha256(got) };
}

export interface SignatureResult {
  verified: string;
  referrers: string[];
}

/** A registry token for `scope`, through the gateway's token endpoint, as a client gets one. */
async function token(s: DemoSettings, key: string, scope: string): Promise<string> {
  const qs = new URLSearchParams({ service: s.service, scope });
  const res = await request(`${s.gatewayUrl}/auth/token?${qs}`, {
    headers: { authorization: `Basic ${Buffer.from(`${DEMO.member}:${key}`).toString('base64')}` },
  });
  const body = await res.body.text();
  if (res.statusCode !== 200)
    throw new DemoStepError(`the token endpoint answered ${res.statusCode}: ${body}`);
  return (JSON.parse(body) as { token: string }).token;
}

/** `cosign verify` through the gateway with the vendor's public key, and the referrers API. */
export async function checkSignature(
  s: DemoSettings,
  key: string,
  registry: RegistryInfo,
): Promise<SignatureResult> {
  const sigstore = await sigstoreTools();
  const dockerConfig = join(demoPaths.downloads, 'docker-config');
  mkdirSync(dockerConfig, { recursive: true, mode: 0o700 });
  const auth = Buffer.from(`${DEMO.member}:${key}`).toString('base64');
  writeFileSync(join(dockerConfig, 'config.json'), JSON.stringify({ auths: { [s.service]: { auth } } }), {
    mode: 0o600,
  });
  const ref = `${s.service}/${DEMO.image.repository}:${DEMO.image.tag}`;
  const args = [
    'verify',
    '--key',
    demoPaths.signingPublicKey,
    '--insecure-ignore-tlog=true',
    '--allow-http-registry',
    ref,
  ];
  const r = await sigstore.cosign(args, {
    env: { ...process.env, DOCKER_CONFIG: dockerConfig },
    timeoutMs: 120_000,
  });
  writeFileSync(
    demoPaths.signatureLog,
    `$ cosign ${args.join(' ')}\n${r.stdout}${r.stderr}(exit ${r.code})\n`,
  );
  if (r.code !== 0) throw new DemoStepError(`cosign verify exited with ${r.code}`, demoPaths.signatureLog);
  const verified = (
    JSON.parse(r.stdout) as Array<{ critical: { image: { 'docker-manifest-digest': string } } }>
  )[0].critical.image['docker-manifest-digest'];
  const bearer = await token(s, key, `repository:${DEMO.image.repository}:pull`);
  const res = await request(`${s.gatewayUrl}/v2/${DEMO.image.repository}/referrers/${registry.imageDigest}`, {
    headers: { authorization: `Bearer ${bearer}`, accept: 'application/vnd.oci.image.index.v1+json' },
  });
  const index = JSON.parse(await res.body.text()) as {
    manifests?: Array<{ digest: string; artifactType?: string }>;
  };
  const referrers = (index.manifests ?? []).map((m) => `${m.artifactType ?? '?'} ${m.digest}`);
  if (!referrers.some((line) => line.endsWith(registry.sbomDigest)))
    throw new DemoStepError(
      `the referrers of ${registry.imageDigest} do not list the SBOM ${registry.sbomDigest}`,
    );
  return { verified, referrers };
}

export interface Refusal {
  kind: 'image' | 'releases' | 'packages';
  /** What the member typed, as printed. */
  attempt: string;
  /** The server's answer: `404 MANIFEST_UNKNOWN`. */
  answer: string;
  /** The explain command and its verdict line. */
  explain: string;
  verdict: string;
  memberSees: string;
}

async function answerOf(url: string, authorization: string): Promise<string> {
  const res = await request(url, { headers: { authorization } });
  const text = await res.body.text();
  let code = '';
  try {
    code = (JSON.parse(text) as { errors?: Array<{ code: string }> }).errors?.[0]?.code ?? '';
  } catch {
    code = '(no envelope)';
  }
  return `${res.statusCode} ${code}`.trim();
}

/** One refused request of each kind, and what `gatehouse explain` says of it: they must agree. */
export async function refusals(s: DemoSettings, env: NodeJS.ProcessEnv, key: string): Promise<Refusal[]> {
  const urls = downloadUrls(s.gatewayUrl);
  // Printed as a member types them: the service name, the key read from its file.
  const shown = downloadUrls(`http://${s.service}`);
  const user = `-u "${DEMO.member}:$(cat ${relative(REPO_ROOT, demoPaths.accessKey)})"`;
  const basic = `Basic ${Buffer.from(`${DEMO.member}:${key}`).toString('base64')}`;
  const bearer = `Bearer ${await token(s, key, `repository:${DEMO.image.repository}:pull`)}`;
  const cases = [
    {
      kind: 'image' as const,
      attempt: `docker pull ${s.service}/${DEMO.image.repository}:${DEMO.image.refusedTag}`,
      url: `${s.gatewayUrl}/v2/${DEMO.image.repository}/manifests/${DEMO.image.refusedTag}`,
      auth: bearer,
      target: `${targets.image}:${DEMO.image.refusedTag}`,
    },
    {
      kind: 'releases' as const,
      attempt: `curl -fLO ${user} ${shown.refusedReleaseAsset}`,
      url: urls.refusedReleaseAsset,
      auth: basic,
      target: `${targets.releases}@${DEMO.release.refusedTag}`,
    },
    {
      kind: 'packages' as const,
      attempt: `curl -fLO ${user} ${shown.refusedPackageFile}`,
      url: urls.refusedPackageFile,
      auth: basic,
      target: `${targets.packages}@${DEMO.package.refusedVersion}`,
    },
  ];
  const out: Refusal[] = [];
  for (const c of cases) {
    const answer = await answerOf(c.url, c.auth);
    const args = ['explain', DEMO.member, c.target, '--format', 'json'];
    const r = await cliRun(env, args);
    let verdict: { allowed: boolean; reason: string; memberSees: string };
    try {
      verdict = JSON.parse(r.stdout) as typeof verdict;
    } catch {
      throw new DemoStepError(
        `gatehouse ${args.join(' ')} printed no JSON (exit ${r.code})`,
        demoPaths.cliLog,
      );
    }
    if (verdict.allowed || r.code !== 1)
      throw new DemoStepError(
        `gatehouse explain says ${c.target} is allowed, yet the server answered ${answer}`,
      );
    // explain names the answer the member gets: the status and code the server sent.
    const [status, code] = answer.split(' ');
    if (!verdict.memberSees.includes(status) || !verdict.memberSees.includes(code)) {
      throw new DemoStepError(
        `the server answered ${answer} for ${c.target}, but explain says the member sees: ${verdict.memberSees}`,
      );
    }
    out.push({
      kind: c.kind,
      attempt: c.attempt,
      answer,
      explain: `gatehouse explain ${DEMO.member} ${c.target}`,
      verdict: `NOT ALLOWED (${verdict.reason})`,
      memberSees: verdict.memberSees,
    });
  }
  return out;
}
