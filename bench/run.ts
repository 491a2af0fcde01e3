import { readFileSync, rmSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { auditFigure } from './audit';
import { clientsFigure } from './clients';
import { coldPathFigure } from './cold';
import { eventsFigure } from './events';
import { manifestFigure } from './manifest';
import { downloadFigure } from './downloads';
import { offloadFigure } from './offload';
import { errorCount, wrk } from './load';
import {
  ACCEPT_MANIFESTS,
  concurrentDigests,
  loadAverage,
  machine,
  median,
  now,
  processMemory,
  PullTiming,
  pullImage,
  sampleRss,
} from './measure';
import { RESULTS_DIR } from './paths';
import { markdownTable, Row } from './table';
import { prepareBenchSeed, registryBlobPath } from './seed';
import {
  basic,
  BenchGateway,
  enrolMember,
  fetchToken,
  freshDir,
  snapshotBuild,
  startGateway,
  startNginx,
  startPassThrough,
  startPlainFileServer,
  startPostgres,
  startRegistries,
  stopAll,
} from './stack';

// The side-by-side benchmark behind dev-docs/performance.md. Run it with `just bench` (builds
// first). Loopback only; every load run is bounded in time; every process it starts is stopped.
// BENCH_SECONDS (default 10) is the length of each measured load run; BENCH_FIGURES=1,2 runs a
// subset; BENCH_CPU_PROF=1 writes a V8 CPU profile of the gateway into bench/results/profiles.

const SECONDS = Number(process.env.BENCH_SECONDS || 10);
const WARMUP_SECONDS = Math.min(3, SECONDS);
const FIGURES = new Set(
  (process.env.BENCH_FIGURES || '1,2,3,4,5,6,7,8,9,10,11,12').split(',').map((s) => Number(s.trim())),
);
const COLD_PULL_REPEATS = Number(process.env.BENCH_COLD_REPEATS || 3);
const AUDIT_ROWS = Number(process.env.BENCH_AUDIT_ROWS || 1_000_000);
const CPU_PROF = process.env.BENCH_CPU_PROF === '1';

const log = (s: string): void =>
  void process.stdout.write(`${new Date().toISOString().slice(11, 19)} ${s}\n`);
const MB = 1e6;
const fmt = (n: number, digits = 0): string => n.toFixed(digits);

async function main(): Promise<void> {
  const started = now();
  const loadAtStart = loadAverage();
  const rows: Row[] = [];
  const raw: Record<string, unknown> = { machine: machine(), loadAtStart, seconds: SECONDS };
  log(`machine: ${JSON.stringify(raw.machine)}; load average ${loadAtStart}`);
  mkdirSync(RESULTS_DIR, { recursive: true });

  const seed = await prepareBenchSeed(log);
  snapshotBuild();
  log('starting PostgreSQL, the registries and nginx');
  const pg = await startPostgres();
  const registries = await startRegistries(seed.storageDir);
  const upstreamAuth = basic(
    registries.upstream.credentials!.username,
    registries.upstream.credentials!.password,
  );
  const bigLayerFile = registryBlobPath(registries.open.storageDir, seed.big.layer.digest);
  const nginx = await startNginx(bigLayerFile);

  const run = freshDir('run');
  const dataDir = join(run, 'data');
  let generation = 0;
  let cacheDir = '';
  const profileDir = join(RESULTS_DIR, 'profiles');
  const launch = async (env?: NodeJS.ProcessEnv): Promise<BenchGateway> => {
    if (cacheDir) rmSync(cacheDir, { recursive: true, force: true });
    cacheDir = join(run, `cache-${generation}`);
    const gw = await startGateway({
      postgresUrl: pg.url,
      upstream: registries.upstream,
      dataDir,
      cacheDir,
      logFile: join(run, `gateway-${generation}.log`),
      nodeArgs: CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [],
      env,
    });
    generation++;
    return gw;
  };
  log('starting the built gateway');
  let gateway = await launch();
  const member = await enrolMember(gateway.env, [seed.big.repository, seed.flight.repository]);
  const bearer = async (): Promise<string> =>
    `Bearer ${await fetchToken(gateway, member, [seed.big.repository, seed.flight.repository])}`;

  const big = seed.big;
  const blobPath = `/v2/${big.repository}/blobs/${big.layer.digest}`;
  const manifestPath = `/v2/${big.repository}/manifests/${big.tag}`;

  // ---------------------------------------------------------------- 3. cold pull
  if (FIGURES.has(3)) {
    log(
      `figure 3: cold pull of ${big.repository}:${big.tag} (${fmt(big.layer.size / MB)} MB layer), ${COLD_PULL_REPEATS}x`,
    );
    // Page cache warm for both sides: the upstream and the reference read the same file.
    await pullImage(registries.upstream.url, big.repository, big.tag, upstreamAuth);
    const direct: PullTiming[] = [];
    const via: PullTiming[] = [];
    // The floor: a bare Node pass-through with the gateway's HTTP client (bench/passthrough.ts).
    const passThrough = await startPassThrough(registries.upstream.url, join(run, 'passthrough.log'));
    const floor: PullTiming[] = [];
    // The same gateway with OCI_HASH_THREADS=1 (hashing in a worker thread that reads the file back).
    const inline: PullTiming[] = [];
    for (let i = 0; i < COLD_PULL_REPEATS; i++) {
      await gateway.stop();
      gateway = await launch({ OCI_HASH_THREADS: '1' });
      inline.push(await pullImage(gateway.url, big.repository, big.tag, await bearer()));
      await gateway.stop();
      gateway = await launch();
      direct.push(await pullImage(registries.upstream.url, big.repository, big.tag, upstreamAuth));
      floor.push(await pullImage(passThrough.url, big.repository, big.tag, upstreamAuth));
      via.push(await pullImage(gateway.url, big.repository, big.tag, await bearer()));
      log(
        `  run ${i + 1}: direct ${fmt(direct[i].totalMs)} ms (first byte ${fmt(direct[i].layerFirstByteMs, 1)} ms), ` +
          `gateway ${fmt(via[i].totalMs)} ms (first byte ${fmt(via[i].layerFirstByteMs, 1)} ms), ` +
          `hash worker ${fmt(inline[i].totalMs)} ms, pass-through floor ${fmt(floor[i].totalMs)} ms`,
      );
    }
    raw.coldPull = { direct, via, inline, floor };
    const fl = median(floor.map((t) => t.totalMs));
    const d = median(direct.map((t) => t.totalMs));
    const g = median(via.map((t) => t.totalMs));
    const gi = median(inline.map((t) => t.totalMs));
    rows.push({
      figure: '3',
      measure: 'cold pull, total (median)',
      gatehouse: `${fmt(g)} ms`,
      reference: `${fmt(d)} ms direct from upstream`,
      ratio: `${fmt(g / d, 2)}×`,
      target: '≤ 1.5×',
      met: g / d <= 1.5,
    });
    rows.push({
      figure: '3',
      measure: 'cold pull, total, OCI_HASH_THREADS=1 (hash in a worker thread)',
      gatehouse: `${fmt(gi)} ms`,
      reference: `${fmt(d)} ms direct from upstream`,
      ratio: `${fmt(gi / d, 2)}×`,
      target: '(reported)',
      met: null,
    });
    rows.push({
      figure: '3',
      measure:
        'cold pull through a bare Node pass-through (undici request() piped to the response; no auth, hash or file): the floor',
      gatehouse: `${fmt(fl)} ms (not Gatehouse)`,
      reference: `${fmt(d)} ms direct from upstream`,
      ratio: `${fmt(fl / d, 2)}×`,
      target: '(reported)',
      met: null,
    });
    rows.push({
      figure: '3',
      measure: 'cold pull, Gatehouse against that floor',
      gatehouse: `${fmt(g)} ms`,
      reference: `${fmt(fl)} ms pass-through`,
      ratio: `${fmt(g / fl, 2)}×`,
      target: '(reported)',
      met: null,
    });
    const df = median(direct.map((t) => t.layerFirstByteMs));
    const gf = median(via.map((t) => t.layerFirstByteMs));
    rows.push({
      figure: '3',
      measure: 'cold pull, layer first byte (median)',
      gatehouse: `${fmt(gf, 1)} ms`,
      reference: `${fmt(df, 1)} ms`,
      ratio: `+${fmt(gf - df, 1)} ms`,
      target: '≤ +50 ms',
      met: gf - df <= 50,
    });
  }

  // ---------------------------------------------------------------- 4. single flight
  if (FIGURES.has(4)) {
    const f = seed.flight;
    log(
      `figure 4: 32 simultaneous first requests for ${f.layer.digest.slice(0, 19)}… (${fmt(f.layer.size / MB)} MB)`,
    );
    const auth = await bearer();
    // The client's pull reads the manifest first, as every client does.
    await pullManifest(gateway.url, f.repository, f.tag, auth);
    const pattern = `"GET /v2/${f.repository}/blobs/${f.layer.digest}`;
    const upstreamGets = (): number =>
      readFileSync(registries.upstream.logFile, 'utf8')
        .split('\n')
        .filter((l) => l.includes(pattern)).length;
    const before = upstreamGets();
    const result = await concurrentDigests(
      `${gateway.url}/v2/${f.repository}/blobs/${f.layer.digest}`,
      auth,
      32,
    );
    await new Promise((r) => setTimeout(r, 500)); // the registry writes its access log after the response
    const upstreamRequests = upstreamGets() - before;
    const identical = result.digests.every((d) => d === f.layer.digest);
    const ok200 = result.statuses.every((s) => s === 200);
    raw.singleFlight = { upstreamRequests, identical, statuses: result.statuses, ms: result.ms };
    log(
      `  upstream GETs: ${upstreamRequests}; all 32 bodies match the digest: ${identical}; ${fmt(result.ms)} ms`,
    );
    rows.push({
      figure: '4',
      measure: '32 simultaneous first requests: upstream requests; bodies',
      gatehouse: `${upstreamRequests} upstream GET; ${identical && ok200 ? '32/32 bodies identical (= digest)' : 'bodies differ or failed'}`,
      reference: '—',
      ratio: '—',
      target: 'exactly 1; all identical',
      met: upstreamRequests === 1 && identical && ok200,
    });
  }

  // Everything below reads the 200 MB blob from the gateway's cache.
  await pullImage(gateway.url, big.repository, big.tag, await bearer());

  // ---------------------------------------------------------------- 1. blob throughput
  if (FIGURES.has(1)) {
    log(`figure 1: cached blob throughput (${fmt(big.layer.size / MB)} MB), ${SECONDS} s per run`);
    const targets = {
      gatehouse: async () => ({
        url: `${gateway.url}${blobPath}`,
        headers: { Authorization: await bearer() },
      }),
      registry: async () => ({ url: `${registries.open.url}${blobPath}`, headers: {} }),
      nginx: async () => ({ url: `${nginx.url}/data`, headers: {} }),
      // For comparison: a plain Node file server on one event loop (bench/plain-file-server.ts).
      node: async () => ({ url: `${plainNode.url}${blobPath}`, headers: {} }),
    };
    const plainNode = await startPlainFileServer(bigLayerFile, join(run, 'plain-file-server.log'));
    const results: Record<string, Record<number, number>> = {};
    for (const [name, target] of Object.entries(targets)) {
      const t = await target();
      await wrk({ ...t, connections: 8, seconds: WARMUP_SECONDS, timeoutSeconds: 60 });
      for (const c of [1, 8]) {
        const r = await wrk({ ...(await target()), connections: c, seconds: SECONDS, timeoutSeconds: 60 });
        if (errorCount(r) > 0 && r.requests === 0)
          throw new Error(`${name} blob run failed: ${JSON.stringify(r.errors)}`);
        (results[name] ??= {})[c] = r.bytesPerSecond;
        (raw.blob ??= {} as Record<string, unknown>) as Record<string, unknown>;
        (raw.blob as Record<string, unknown>)[`${name}-${c}`] = r;
        log(
          `  ${name} c=${c}: ${fmt(r.bytesPerSecond / MB)} MB/s (${r.requests} bodies, errors ${JSON.stringify(r.errors)})`,
        );
      }
    }
    for (const c of [1, 8]) {
      const g = results.gatehouse[c];
      const reg = results.registry[c];
      const ngx = results.nginx[c];
      rows.push({
        figure: '1',
        measure: `cached blob, ${c} connection${c > 1 ? 's' : ''}, vs registry`,
        gatehouse: `${fmt(g / MB)} MB/s`,
        reference: `${fmt(reg / MB)} MB/s registry`,
        ratio: `${fmt(g / reg, 2)}×`,
        target: '≥ 1.0×',
        met: g / reg >= 1.0,
      });
      rows.push({
        figure: '1',
        measure: `cached blob, ${c} connection${c > 1 ? 's' : ''}, vs nginx`,
        gatehouse: `${fmt(g / MB)} MB/s`,
        reference: `${fmt(ngx / MB)} MB/s nginx`,
        ratio: `${fmt(g / ngx, 2)}×`,
        target: c === 8 ? '≥ 0.8×' : '(reported)',
        met: c === 8 ? g / ngx >= 0.8 : null,
      });
      const plain = results.node[c];
      rows.push({
        figure: '1',
        measure: `cached blob, ${c} connection${c > 1 ? 's' : ''}: a plain Node file server (createReadStream piped to the response; no auth), for comparison, vs registry`,
        gatehouse: `${fmt(plain / MB)} MB/s (not Gatehouse)`,
        reference: `${fmt(reg / MB)} MB/s registry`,
        ratio: `${fmt(plain / reg, 2)}×`,
        target: '(reported)',
        met: null,
      });
    }
  }

  // ---------------------------------------------------------------- 5. peak RSS
  if (FIGURES.has(5)) {
    log(`figure 5: gateway RSS while 32 clients stream the blob for ${SECONDS} s`);
    const baseline = processMemory(gateway.pid);
    const sampler = sampleRss(gateway.pid);
    const r = await wrk({
      url: `${gateway.url}${blobPath}`,
      headers: { Authorization: await bearer() },
      connections: 32,
      seconds: SECONDS,
      timeoutSeconds: 120,
    });
    const { peak, samples } = sampler.stop();
    raw.rss = { baseline, peak, samples, load: r };
    log(
      `  RSS before ${fmt(baseline.rss / MB)} MB, peak ${fmt(peak / MB)} MB (${samples} samples), ${fmt(r.bytesPerSecond / MB)} MB/s`,
    );
    rows.push({
      figure: '5',
      measure: 'gateway peak RSS, 32 clients streaming the blob',
      gatehouse: `${fmt(peak / MB)} MB`,
      reference: `${fmt(baseline.rss / MB)} MB idle before`,
      ratio: '—',
      target: '≤ 256 MB',
      met: peak <= 256 * MB,
    });
  }

  // ---------------------------------------------------------------- 2. warm manifest
  if (FIGURES.has(2)) {
    rows.push(
      ...(await manifestFigure({
        gatewayUrl: gateway.url,
        registryUrl: registries.open.url,
        registryAuthUrl: registries.upstream.url,
        manifestPath,
        bearer,
        upstreamAuth,
        seconds: SECONDS,
        warmupSeconds: WARMUP_SECONDS,
        raw,
        log,
      })),
    );
  }

  // ---------------------------------------------------------------- 6. token endpoint
  if (FIGURES.has(6)) {
    log(`figure 6: logins (scope-less token requests), 8 connections, ${SECONDS} s`);
    const url = `${gateway.url}/auth/token?${new URLSearchParams({ service: gateway.service, account: member.username })}`;
    const headers = { Authorization: basic(member.username, member.key) };
    await wrk({ url, headers, connections: 8, seconds: WARMUP_SECONDS });
    const r = await wrk({ url, headers, connections: 8, seconds: SECONDS });
    raw.token = r;
    log(
      `  ${fmt(r.requestsPerSecond)} logins/s, p50 ${fmt(r.latencyUs.p50 / 1000, 2)} ms, p99 ${fmt(r.latencyUs.p99 / 1000, 2)} ms, errors ${JSON.stringify(r.errors)}`,
    );
    rows.push({
      figure: '6',
      measure: 'token endpoint: logins/s, p99 (keyed SHA-256 keys, ES256 tokens)',
      gatehouse: `${fmt(r.requestsPerSecond)} logins/s, p99 ${fmt(r.latencyUs.p99 / 1000, 2)} ms`,
      reference: '—',
      ratio: '—',
      target: '(reported)',
      met: errorCount(r) === 0 ? null : false,
    });
  }

  // ---------------------------------------------------------------- 7. audit at a million rows
  if (FIGURES.has(7)) {
    log(`figure 7: audit search over ${AUDIT_ROWS.toLocaleString('en')} rows`);
    await auditFigure(pg.url, gateway, rows, raw, AUDIT_ROWS, log);
  }

  if (FIGURES.has(8)) rows.push(...(await downloadFigure(pg.url, member, run, COLD_PULL_REPEATS, log)));
  if (FIGURES.has(12)) {
    const f = await coldPathFigure({
      seed,
      upstream: registries.open,
      member,
      gateway: {
        postgresUrl: pg.url,
        dataDir,
        nodeArgs: CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [],
      },
      runDir: run,
      log,
    });
    rows.push(...f.rows);
    raw.coldPath = f.raw;
  }
  if (FIGURES.has(10))
    rows.push(...(await offloadFigure({ pg, registries, gateway, member, big, nginx, run, raw, log })));

  if (FIGURES.has(11)) {
    const auth = await bearer();
    rows.push(
      ...(await eventsFigure({
        gateway,
        auth,
        pullManifest: () => pullManifest(gateway.url, big.repository, big.tag, auth),
        raw,
        log,
      })),
    );
  }

  if (FIGURES.has(9)) {
    const relaunch = async (): Promise<BenchGateway> => {
      await gateway.stop();
      return (gateway = await launch());
    };
    const f = await clientsFigure({
      image: big,
      upstream: registries.upstream,
      member,
      relaunch,
      current: () => gateway,
      run,
      repeats: COLD_PULL_REPEATS,
      log,
    });
    rows.push(...f.rows);
    raw.clients = f.raw;
  }

  await stopAll();
  raw.loadAtEnd = loadAverage();
  raw.rows = rows;
  raw.elapsedSeconds = (now() - started) / 1000;
  writeFileSync(join(RESULTS_DIR, 'latest.json'), JSON.stringify(raw, null, 2));
  const table = markdownTable(rows);
  writeFileSync(join(RESULTS_DIR, 'latest.md'), table);
  process.stdout.write(`\n${table}\n`);
  log(
    `load average at start ${loadAtStart}, at end ${raw.loadAtEnd}; ${fmt(raw.elapsedSeconds as number)} s`,
  );
  log(`raw results: ${join(RESULTS_DIR, 'latest.json')}`);
}

async function pullManifest(baseUrl: string, repository: string, tag: string, auth: string): Promise<void> {
  const { request } = await import('undici');
  const res = await request(`${baseUrl}/v2/${repository}/manifests/${tag}`, {
    headers: { authorization: auth, accept: ACCEPT_MANIFESTS },
  });
  await res.body.dump();
  if (res.statusCode !== 200) throw new Error(`manifest ${repository}:${tag}: ${res.statusCode}`);
}

main().catch(async (err: unknown) => {
  process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`);
  await stopAll();
  process.exitCode = 1;
});
