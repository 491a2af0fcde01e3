import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
// eslint-disable-next-line no-restricted-imports
import { startTestNginx } from '../libs/testing/src/nginx';
// eslint-disable-next-line no-restricted-imports
import { startTestRedis } from '../libs/testing/src/redis';
// eslint-disable-next-line no-restricted-imports
import { getFreePort } from '../libs/testing/src/upstream';
import { errorCount, wrk } from './load';
import { ACCEPT_MANIFESTS, concurrentDigests, loadAverage, machine, now, pullImage } from './measure';
import { RESULTS_DIR } from './paths';
import { prepareBenchSeed } from './seed';
import {
  BenchGateway,
  enrolMember,
  fetchToken,
  freshDir,
  snapshotBuild,
  startGateway,
  startPostgres,
  startRegistries,
  stopAll,
} from './stack';

// Several replicas (issue 18), side by side: warm manifest requests/s of two built gateways
// behind Debian's nginx running docker/nginx.conf vs one gateway alone, and a cold 200 MB pull
// by 32 clients through the balancer (how many upstream fetches). Both replicas share one
// PostgreSQL, one Redis and the secrets. Run by `just bench` after bench/run.ts
// (BENCH_REPLICAS=0 skips it); results in bench/results/replicas.json.

const SECONDS = Number(process.env.BENCH_SECONDS || 10);
const WARMUP_SECONDS = Math.min(3, SECONDS);
const log = (s: string): void =>
  void process.stdout.write(`${new Date().toISOString().slice(11, 19)} ${s}\n`);
const fmt = (n: number, digits = 0): string => n.toFixed(digits);

async function main(): Promise<void> {
  const loadAtStart = loadAverage();
  log(`replicas: machine ${JSON.stringify(machine())}; load average ${loadAtStart}`);
  mkdirSync(RESULTS_DIR, { recursive: true });
  const seed = await prepareBenchSeed(log);
  snapshotBuild();
  const pg = await startPostgres();
  const registries = await startRegistries(seed.storageDir);
  const redis = await startTestRedis();
  const lbPort = await getFreePort();
  const service = `127.0.0.1:${lbPort}`;
  const run = freshDir('replicas');
  const shared = {
    REDIS_URL: redis.url,
    OCI_REGISTRY_SERVICE: service,
    OCI_REGISTRY_REALM: `http://${service}/auth/token`,
    TRUST_PROXY: 'loopback',
  };
  const launch = (name: string, env: NodeJS.ProcessEnv): Promise<BenchGateway> =>
    startGateway({
      postgresUrl: pg.url,
      upstream: registries.upstream,
      dataDir: join(run, `data-${name}`),
      cacheDir: join(run, `cache-${name}`),
      logFile: join(run, `gateway-${name}.log`),
      env: { ...shared, ...env },
    });
  log('starting two built gateways (one Redis, one PostgreSQL, the same secrets) and nginx');
  const a = await launch('a', {});
  const b = await launch('b', {
    TOKEN_SIGNING_KEY_FILE: join(run, 'data-a', 'token-signing-key.pem'),
    ACCESS_KEY_SECRET_FILE: join(run, 'data-a', 'access-key-secret'),
  });
  const port = (gw: BenchGateway): number => Number(new URL(gw.url).port);
  const nginx = await startTestNginx({ port: lbPort, upstreams: [port(a), port(b)] });
  const big = seed.big;
  const member = await enrolMember(a.env, [big.repository]);
  const viaLb = { url: nginx.url, service, pid: 0, env: a.env, stop: async () => undefined };
  const auth = `Bearer ${await fetchToken(viaLb, member, [big.repository])}`;

  // ------------------------------------------------ cold 200 MB, 32 clients over two replicas
  log(
    `cold pull of ${big.repository}:${big.tag} (${fmt(big.layer.size / 1e6)} MB) by 32 clients through nginx`,
  );
  const pattern = `"GET /v2/${big.repository}/blobs/${big.layer.digest}`;
  const upstreamGets = (): number =>
    readFileSync(registries.upstream.logFile, 'utf8')
      .split('\n')
      .filter((l) => l.includes(pattern)).length;
  const before = upstreamGets();
  const t0 = now();
  // Each client reads the manifest first (spread over both replicas by round robin), then the layer.
  const cold = await Promise.all(
    Array.from({ length: 32 }, async () => {
      const m = await fetch(`${nginx.url}/v2/${big.repository}/manifests/${big.tag}`, {
        headers: { authorization: auth, accept: ACCEPT_MANIFESTS },
      });
      await m.arrayBuffer();
      return m.status;
    }),
  );
  const blobs = await concurrentDigests(
    `${nginx.url}/v2/${big.repository}/blobs/${big.layer.digest}`,
    auth,
    32,
  );
  const coldMs = now() - t0;
  await new Promise((r) => setTimeout(r, 500));
  const fetches = upstreamGets() - before;
  const identical =
    blobs.digests.every((d) => d === big.layer.digest) && blobs.statuses.every((s) => s === 200);
  log(
    `  upstream GETs of the layer: ${fetches}; manifests ${cold.every((s) => s === 200) ? '32×200' : cold.join(',')}; ` +
      `32 bodies = digest: ${identical}; ${fmt(coldMs)} ms`,
  );

  // ------------------------------------------------ warm manifest: one replica vs two behind nginx
  const manifestPath = `/v2/${big.repository}/manifests/${big.tag}`;
  const headers = { Accept: ACCEPT_MANIFESTS, Authorization: auth };
  const measure = async (name: string, url: string) => {
    await wrk({ url, headers, connections: 32, seconds: WARMUP_SECONDS });
    const r = await wrk({ url, headers, connections: 32, seconds: SECONDS });
    log(
      `  ${name}: ${fmt(r.requestsPerSecond)} req/s, p50 ${fmt(r.latencyUs.p50 / 1000, 2)} ms, ` +
        `p99 ${fmt(r.latencyUs.p99 / 1000, 2)} ms${errorCount(r) ? `, errors ${JSON.stringify(r.errors)}` : ''}`,
    );
    return r;
  };
  await pullImage(nginx.url, big.repository, big.tag, auth);
  log(`warm manifest GET by tag, 32 connections, ${SECONDS} s per run`);
  const one = await measure('one replica, direct', `${a.url}${manifestPath}`);
  const two = await measure('two replicas behind nginx', `${nginx.url}${manifestPath}`);

  const loadAtEnd = loadAverage();
  const results = {
    machine: machine(),
    loadAtStart,
    loadAtEnd,
    seconds: SECONDS,
    cold: { clients: 32, upstreamFetches: fetches, identical, ms: coldMs },
    manifest: { oneReplica: one, twoReplicasBehindNginx: two },
  };
  writeFileSync(join(RESULTS_DIR, 'replicas.json'), JSON.stringify(results, null, 2));
  process.stdout.write(
    [
      '',
      `| measure | one replica | two replicas behind nginx | ratio |`,
      `|---|---|---|---|`,
      `| warm manifest by tag, 32 conns: requests/s | ${fmt(one.requestsPerSecond)} | ${fmt(two.requestsPerSecond)} | ${fmt(two.requestsPerSecond / one.requestsPerSecond, 2)}× |`,
      `| warm manifest by tag, 32 conns: p50 / p99 ms | ${fmt(one.latencyUs.p50 / 1000, 2)} / ${fmt(one.latencyUs.p99 / 1000, 2)} | ${fmt(two.latencyUs.p50 / 1000, 2)} / ${fmt(two.latencyUs.p99 / 1000, 2)} | — |`,
      `| cold ${fmt(big.layer.size / 1e6)} MB layer, 32 clients through nginx: upstream fetches; time | — | ${fetches}; ${fmt(coldMs)} ms; bodies ${identical ? 'identical' : 'DIFFER'} | — |`,
      `load average ${loadAtStart} at start, ${loadAtEnd} at end`,
      '',
    ].join('\n'),
  );
  await nginx.stop();
  await redis.stop();
  await stopAll();
}

main().catch(async (err: unknown) => {
  process.stderr.write(`bench (replicas) failed: ${(err as Error).stack ?? String(err)}\n`);
  await stopAll();
  process.exitCode = 1;
});
