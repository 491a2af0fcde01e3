import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
// eslint-disable-next-line no-restricted-imports
import { startTestNginx } from '../libs/testing/src/nginx';
// eslint-disable-next-line no-restricted-imports
import { startTestRedis } from '../libs/testing/src/redis';
// eslint-disable-next-line no-restricted-imports
import {
  deterministicBytes,
  generatePat,
  getFreePort,
  RegistryProcess,
  startForgejoFront,
} from '../libs/testing/src/upstream';
import { ACCEPT_MANIFESTS, loadAverage, machine, pullImage } from './measure';
import { RESULTS_DIR } from './paths';
import { prepareBenchSeed } from './seed';
import {
  basic,
  BenchGateway,
  cli,
  enrolMember,
  fetchToken,
  freshDir,
  snapshotBuild,
  startGateway,
  startPostgres,
  startRegistries,
  stopAll,
} from './stack';

// The soak run (issue 28, not CI): two built gateways behind Debian's nginx (docker/nginx.conf),
// one PostgreSQL, one Redis, for SOAK_SECONDS (default 1800) of mixed traffic by SOAK_CLIENTS
// loops: pulls of the 64 MiB image, logins, downloads of an 8 MB release asset (whole, and
// resumed from its middle with Range) and of a generic package file, and deliberate refusals (a
// wrong key: 401; an unentitled image: 404; an unentitled release: 404). The gateways' upstream is
// the test Forgejo front over the htpasswd registry, as in production: registry and downloads. Every 10 s each replica's RSS, open descriptors and event-loop delay
// (p99, prom-client's default metrics) are sampled; the report gives each series' first and last
// value and its least-squares slope per hour, over the whole run and over its second half (after
// caches fill and V8 settles). Errors are anything but the deliberate refusals.
// `just soak`; results in bench/results/soak.json.

const SECONDS = Number(process.env.SOAK_SECONDS || 1800);
const CLIENTS = Number(process.env.SOAK_CLIENTS || 8);
const SAMPLE_MS = 10_000;
const log = (s: string): void =>
  void process.stdout.write(`${new Date().toISOString().slice(11, 19)} ${s}\n`);

interface Sample {
  t: number;
  rssBytes: number;
  fds: number;
  eventLoopP99Ms: number;
}

async function sample(gw: BenchGateway, t: number): Promise<Sample> {
  const text = await (await request(`${gw.url}/metrics`)).body.text();
  const metric = (name: string) => Number(new RegExp(`^${name} ([0-9.e+-]+)$`, 'm').exec(text)?.[1] ?? NaN);
  return {
    t,
    rssBytes: metric('process_resident_memory_bytes'),
    fds: metric('process_open_fds'),
    eventLoopP99Ms: metric('nodejs_eventloop_lag_p99_seconds') * 1000,
  };
}

/** Least-squares slope of `y` over `t` (seconds), per hour. */
function slopePerHour(points: Array<{ t: number; y: number }>): number {
  const n = points.length;
  if (n < 2) return 0;
  const mt = points.reduce((a, p) => a + p.t, 0) / n;
  const my = points.reduce((a, p) => a + p.y, 0) / n;
  const num = points.reduce((a, p) => a + (p.t - mt) * (p.y - my), 0);
  const den = points.reduce((a, p) => a + (p.t - mt) ** 2, 0);
  return den === 0 ? 0 : (num / den) * 3600;
}

async function main(): Promise<void> {
  const loadAtStart = loadAverage();
  log(`soak: ${SECONDS} s, ${CLIENTS} clients; machine ${JSON.stringify(machine())}; load ${loadAtStart}`);
  mkdirSync(RESULTS_DIR, { recursive: true });
  const seed = await prepareBenchSeed(log);
  snapshotBuild();
  const pg = await startPostgres();
  const registries = await startRegistries(seed.storageDir);
  const redis = await startTestRedis();
  const lbPort = await getFreePort();
  const service = `127.0.0.1:${lbPort}`;
  const run = freshDir('soak');
  const shared = {
    REDIS_URL: redis.url,
    OCI_REGISTRY_SERVICE: service,
    OCI_REGISTRY_REALM: `http://${service}/auth/token`,
    TRUST_PROXY: 'loopback',
    // Every client is 127.0.0.1 here: the per-IP limits are not under test (a stranger's failed
    // logins would lock the address the member logs in from).
    RATE_LIMIT_TOKEN_PER_IP: '0',
    RATE_LIMIT_ANONYMOUS_PER_IP: '0',
    RATE_LIMIT_V2_PER_MEMBER: '0',
    AUTH_FAILED_LOGINS_PER_IP: '1000000',
  };
  const pat = generatePat('soak');
  const front = await startForgejoFront({
    upstreamUrl: registries.upstream.url,
    upstreamCreds: registries.upstream.credentials,
    knownOwners: ['bench', 'acme'],
    tokens: { [pat]: { scopes: ['read:package', 'read:repository'] } },
  });
  const asset = deterministicBytes('soak-asset', 8_000_000);
  const packageFile = deterministicBytes('soak-package', 1_000_000);
  front.addRelease('acme/tool', { tag: 'v1.0.0', assets: { 'tool.tar.gz': asset } });
  front.addRelease('acme/secret', { tag: 'v1.0.0', assets: { 'secret.tar.gz': asset } });
  front.addPackageFile('acme/cli', '1.0.0', 'cli.tar.gz', packageFile);
  const upstream = {
    url: front.url,
    credentials: { username: '', password: pat },
  } as unknown as RegistryProcess;
  const launch = (name: string, env: NodeJS.ProcessEnv): Promise<BenchGateway> =>
    startGateway({
      postgresUrl: pg.url,
      upstream,
      dataDir: join(run, `data-${name}`),
      cacheDir: join(run, `cache-${name}`),
      logFile: join(run, `gateway-${name}.log`),
      env: { ...shared, ...env },
    });
  const a = await launch('a', {});
  const b = await launch('b', {
    TOKEN_SIGNING_KEY_FILE: join(run, 'data-a', 'token-signing-key.pem'),
    ACCESS_KEY_SECRET_FILE: join(run, 'data-a', 'access-key-secret'),
  });
  const port = (gw: BenchGateway): number => Number(new URL(gw.url).port);
  const nginx = await startTestNginx({ port: lbPort, upstreams: [port(a), port(b)] });
  const image = seed.flight;
  const member = await enrolMember(a.env, [image.repository]);
  await cli(a.env, ['grant', member.username, 'releases:acme/tool', '--tags', '*']);
  await cli(a.env, ['grant', member.username, 'packages:acme/cli', '--tags', '*']);
  const memberBasic = basic(member.username, member.key);
  const assetUrl = `${nginx.url}/downloads/releases/acme/tool/v1.0.0/tool.tar.gz`;
  const packageUrl = `${nginx.url}/downloads/packages/acme/cli/1.0.0/cli.tar.gz`;
  const download = async (url: string, expected: Buffer, from = 0): Promise<void> => {
    const res = await request(url, {
      headers: { authorization: memberBasic, ...(from > 0 ? { range: `bytes=${from}-` } : {}) },
    });
    const body = Buffer.from(await res.body.arrayBuffer());
    const status = from > 0 ? 206 : 200;
    if (res.statusCode !== status) fail(`${url} from ${from} answered ${res.statusCode}`);
    else if (!body.equals(expected.subarray(from))) fail(`${url} from ${from}: wrong bytes (${body.length})`);
    else counts.downloads++;
  };
  const viaLb = { url: nginx.url, service, pid: 0, env: a.env, stop: async () => undefined };
  // A stranger who knows no key: 401, then 429 once its failed-login budget is spent.
  const stranger = 'Basic ' + Buffer.from('stranger:not-a-key').toString('base64');

  const counts = { pulls: 0, logins: 0, downloads: 0, refusals: 0, errors: 0 };
  const errorSamples: string[] = [];
  const fail = (what: string) => {
    counts.errors++;
    if (errorSamples.length < 10) errorSamples.push(what);
  };
  const started = Date.now();
  const deadline = started + SECONDS * 1000;
  const series: Record<'a' | 'b', Sample[]> = { a: [], b: [] };
  const sampler = setInterval(() => {
    const t = (Date.now() - started) / 1000;
    for (const [name, gw] of [
      ['a', a],
      ['b', b],
    ] as const)
      sample(gw, t).then(
        (s) => series[name].push(s),
        (e: Error) => fail(`sample ${name}: ${e.message}`),
      );
  }, SAMPLE_MS);

  const loop = async (i: number) => {
    for (let n = 0; Date.now() < deadline; n++) {
      try {
        const step = (i + n) % 5;
        if (step === 4) {
          await download(assetUrl, asset);
          await download(assetUrl, asset, asset.length / 2);
          await download(packageUrl, packageFile);
          const secret = await request(`${nginx.url}/downloads/releases/acme/secret/v1.0.0/secret.tar.gz`, {
            headers: { authorization: memberBasic },
          });
          await secret.body.dump();
          if (secret.statusCode !== 404) fail(`unentitled release answered ${secret.statusCode}`);
          counts.refusals++;
        } else if (step === 3) {
          // Deliberate refusals: a wrong key, and an image the member is not entitled to.
          const wrong = await request(`${nginx.url}/auth/token?service=${service}`, {
            headers: { authorization: stranger },
          });
          await wrong.body.dump();
          if (wrong.statusCode !== 401 && wrong.statusCode !== 429)
            fail(`wrong key answered ${wrong.statusCode}`);
          const t = await fetchToken(viaLb, member, [image.repository]);
          const other = await request(`${nginx.url}/v2/acme/unentitled/manifests/latest`, {
            headers: { authorization: `Bearer ${t}`, accept: ACCEPT_MANIFESTS },
          });
          await other.body.dump();
          if (other.statusCode !== 404 && other.statusCode !== 401)
            fail(`unentitled answered ${other.statusCode}`);
          counts.refusals += 2;
        } else {
          const t = await fetchToken(viaLb, member, [image.repository]);
          counts.logins++;
          const p = await pullImage(nginx.url, image.repository, image.tag, `Bearer ${t}`);
          if (p.bytes !== image.config.size + image.layer.size) fail(`pull got ${p.bytes} bytes`);
          counts.pulls++;
        }
      } catch (e) {
        fail((e as Error).message);
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  };
  await Promise.all(Array.from({ length: CLIENTS }, (_, i) => loop(i)));
  clearInterval(sampler);

  const summary = (name: 'a' | 'b') => {
    const s = series[name];
    const half = SECONDS / 2;
    const of = (k: keyof Omit<Sample, 't'>) => ({
      first: s[0]?.[k],
      last: s[s.length - 1]?.[k],
      slopePerHour: slopePerHour(s.map((p) => ({ t: p.t, y: p[k] }))),
      secondHalfSlopePerHour: slopePerHour(s.filter((p) => p.t >= half).map((p) => ({ t: p.t, y: p[k] }))),
    });
    return {
      samples: s.length,
      rssBytes: of('rssBytes'),
      fds: of('fds'),
      eventLoopP99Ms: of('eventLoopP99Ms'),
    };
  };
  const results = {
    machine: machine(),
    loadAtStart,
    loadAtEnd: loadAverage(),
    seconds: SECONDS,
    clients: CLIENTS,
    counts,
    errorSamples,
    replicas: { a: summary('a'), b: summary('b') },
    series,
  };
  writeFileSync(join(RESULTS_DIR, 'soak.json'), JSON.stringify(results, null, 2));
  const mib = (x: number | undefined) => `${((x ?? 0) / 1024 / 1024).toFixed(0)} MiB`;
  for (const name of ['a', 'b'] as const) {
    const r = results.replicas[name];
    // Slopes per hour: whole run / second half.
    log(
      `replica ${name}: ${r.samples} samples; RSS ${mib(r.rssBytes.first)} → ${mib(r.rssBytes.last)} ` +
        `(${mib(r.rssBytes.slopePerHour)} / ${mib(r.rssBytes.secondHalfSlopePerHour)} per h); ` +
        `fds ${r.fds.first} → ${r.fds.last} ` +
        `(${r.fds.slopePerHour.toFixed(1)} / ${r.fds.secondHalfSlopePerHour.toFixed(1)} per h); ` +
        `event-loop p99 ${r.eventLoopP99Ms.first?.toFixed(1)} → ${r.eventLoopP99Ms.last?.toFixed(1)} ms ` +
        `(${r.eventLoopP99Ms.slopePerHour.toFixed(2)} / ${r.eventLoopP99Ms.secondHalfSlopePerHour.toFixed(2)} ms/h)`,
    );
  }
  log(
    `pulls ${counts.pulls}, logins ${counts.logins}, downloads ${counts.downloads}, deliberate refusals ${counts.refusals}, errors ${counts.errors}` +
      (errorSamples.length ? `: ${errorSamples.join('; ')}` : ''),
  );
  await nginx.stop();
  await redis.stop();
  await front.stop();
  await stopAll();
  if (counts.errors > 0) process.exitCode = 1;
}

main().catch(async (err: unknown) => {
  process.stderr.write(`soak failed: ${(err as Error).stack ?? String(err)}\n`);
  await stopAll();
  process.exitCode = 1;
});
