import { ChildProcess, execFile, spawn } from 'node:child_process';
import { closeSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
// eslint-disable-next-line no-restricted-imports
import { RegistryProcess, startRegistry } from '../libs/testing/src/upstream';
import { makeShapedLink, ShapedLink } from './link';
import { median } from './measure';
import { BenchSeed, BenchImage } from './seed';
import {
  BenchGateway,
  BenchMember,
  fetchToken,
  GatewayOptions,
  onStop,
  startGateway,
  startPassThroughProcess,
} from './stack';
import { Row } from './table';

// Figure 12, the cold path (`BENCH_FIGURES=12`): one cold GET of a layer blob, timed by curl for
// every row (the direct fetch included), through three middles that each start empty:
//   direct   curl → the upstream registry
//   proxy    curl → Debian's docker-registry in proxy mode (`proxy.remoteurl`) → the upstream
//   gateway  curl → Gatehouse (Bearer token fetched before the clock) → the upstream
// The upstream is a registry without authentication: distribution 2.8's proxy cannot answer a
// Basic challenge (it keys its credentials by token realms), and a bcrypt check per request would
// slow the direct row alone. The gateway sends its service credential, which it ignores.
// on three links to the upstream: loopback, and a veth pair into a network namespace shaped by
// tbf to 1 Gbit/s and to 10 Gbit/s (bench/link.ts). Each repetition starts a fresh proxy (empty
// storage) and a fresh gateway (empty cache), reads the manifest through the gateway (untimed:
// every client does, and the gateway checks the blob against it; distribution 2.8's proxy cannot
// fetch the seed's OCI manifest and needs none to serve a blob by digest), then times direct, proxy
// and gateway in turn, each middle after one untimed cold GET of the other layer (a running middle,
// not a fresh process's first blob) and with memory pre-touched just before (see pretouch). The CPU
// seconds of each middle process (all threads, /proc/<pid>/stat utime + stime) are read before the
// GET and once it is idle again (settle: the proxy's background store and the gateway's commit
// included) and reported per GB.
// Then the same GET again on each row: the blob cached by each middle (the direct row repeated).
// BENCH_STRACE=1 adds `strace -f -c` of the gateway during its last GET on the first link measured;
// BENCH_PERF=1 records `perf record -g` (cpu-clock) instead (`perf report -i <run>/perf-cold-*.data`).
// A bare Node pass-through (bench/passthrough.ts) is timed the same way as a fourth row: the floor.

const exec = promisify(execFile);
const REPEATS = Number(process.env.BENCH_COLD_PATH_REPEATS || 5);
const TRACER =
  process.env.BENCH_PERF === '1' ? 'perf' : process.env.BENCH_STRACE === '1' ? 'strace' : undefined;
const CLOCK_TICKS = 100;
// BENCH_COLD_GATEWAY_ENV='OCI_HASH_THREADS=1 …' adds settings to the figure's gateways (comparisons).
const GATEWAY_ENV = Object.fromEntries(
  (process.env.BENCH_COLD_GATEWAY_ENV || '')
    .split(' ')
    .filter((pair) => pair.includes('='))
    .map((pair) => [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)]),
);

// BENCH_COLD_NODE_ARGS='--trace-gc …' adds Node options to the figure's gateways (diagnosis).
const NODE_ARGS = (process.env.BENCH_COLD_NODE_ARGS || '').split(' ').filter(Boolean);

export interface ColdPathContext {
  seed: BenchSeed;
  /** The loopback registry without authentication the main figures use as their reference. */
  upstream: RegistryProcess;
  member: BenchMember;
  gateway: Omit<GatewayOptions, 'upstream' | 'cacheDir' | 'logFile'>;
  runDir: string;
  log: (s: string) => void;
}

interface CurlTiming {
  totalMs: number;
  firstByteMs: number;
  bytes: number;
}

interface Sample {
  direct: CurlTiming;
  proxy: CurlTiming;
  gateway: CurlTiming;
  /** bench/passthrough.ts: undici's request() piped to the response, nothing else (the floor). */
  floor: CurlTiming;
  proxyCpuS: number;
  /** The proxy's CPU when the client had its last byte (its background store still running). */
  proxyCpuAtLastByteS: number;
  gatewayCpuS: number;
  floorCpuS: number;
  /** The same GET again: the blob now cached by each middle. */
  cached: { direct: CurlTiming; proxy: CurlTiming; gateway: CurlTiming };
  /** Per-thread user + system seconds of each middle process during its GET. */
  proxyThreads: string;
  gatewayThreads: string;
  /** Rate of the memory pre-touch before the repetition (pretouchMemory). */
  pretouch: string;
}

/** utime + stime of every thread of `pid`, in seconds. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

/** Minor page faults of `pid` (all threads). */
export function minorFaults(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[7]);
}

/** CPU seconds (user, system) of each thread of `pid` by thread name (summed over same names). */
export function threadCpu(pid: number): Record<string, { user: number; system: number }> {
  const out: Record<string, { user: number; system: number }> = {};
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const entry = (out[name] ??= { user: 0, system: 0 });
      entry.user += Number(fields[11]) / CLOCK_TICKS;
      entry.system += Number(fields[12]) / CLOCK_TICKS;
    } catch {
      // the thread ended
    }
  }
  return out;
}

function threadDelta(
  before: Record<string, { user: number; system: number }>,
  after: Record<string, { user: number; system: number }>,
): string {
  return Object.entries(after)
    .map(([name, a]) => {
      const b = before[name] ?? { user: 0, system: 0 };
      return [name, a.user - b.user, a.system - b.system] as const;
    })
    .filter(([, u, s]) => u + s >= 0.01)
    .map(([name, u, s]) => `${name} ${u.toFixed(2)}u+${s.toFixed(2)}s`)
    .join(', ');
}

async function curl(url: string, authorization?: string): Promise<CurlTiming> {
  const args = [
    '-sS',
    '-o',
    '/dev/null',
    '-w',
    '%{http_code} %{size_download} %{time_starttransfer} %{time_total}',
  ];
  if (authorization) args.push('-H', `Authorization: ${authorization}`);
  args.push(
    '-H',
    'Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json',
  );
  const { stdout } = await exec('curl', [...args, url], { timeout: 300_000 });
  const [code, size, firstByte, total] = stdout.trim().split(' ');
  if (code !== '200') throw new Error(`curl ${url}: HTTP ${code}`);
  return { totalMs: Number(total) * 1000, firstByteMs: Number(firstByte) * 1000, bytes: Number(size) };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Waits until `pid` has finished the work the GET started: its CPU counter moves by at most one
 * clock tick in 250 ms (at least 300 ms, at most 20 s). A middle may finish its caching after the
 * client's last byte (distribution's proxy stores the blob with a second fetch in the background;
 * the gateway commits after the last byte), and that work is part of its cost per cold GB.
 */
async function settle(pid: number): Promise<number> {
  await sleep(300);
  let last = cpuSeconds(pid);
  for (let waited = 0; waited < 20_000; waited += 250) {
    await sleep(250);
    const now = cpuSeconds(pid);
    if (now - last <= 1 / CLOCK_TICKS) return now;
    last = now;
  }
  return last;
}

// BENCH_COLD_PRETOUCH_MB (default 512 before each middle's timed GET; 0 turns it off): see pretouch.
const PRETOUCH_MB = Number(process.env.BENCH_COLD_PRETOUCH_MB ?? 512);

/**
 * Writes and removes a file of PRETOUCH_MB just before a middle's timed GET. The bench's VMs hand
 * freed memory back to the host (virtio-balloon free page reporting: free 2 MiB blocks are
 * reported about 2 s after they are freed, /sys/module/page_reporting), and the first write into
 * such a page costs a host fault: a 400 MB file written with dd took 0.83 s of system time into
 * reported pages and 0.09 s into pages freed a moment before. Each middle writes its cache file
 * into new page-cache pages; without this the figure measures the hypervisor, not the middle
 * (one profile of the gateway's cold GET: 44 % of its samples in the kernel's copy into page-cache
 * pages). The pages freed here are the first the kernel hands out again. Returns the write rate:
 * slow when the pages came from the host, as evidence of what was taken off the clock.
 */
function pretouch(dir: string): string {
  if (PRETOUCH_MB <= 0) return 'off';
  const file = join(dir, 'pretouch.bin');
  const chunk = Buffer.alloc(8 * 1024 * 1024, 1);
  const started = process.hrtime.bigint();
  const fd = openSync(file, 'w');
  try {
    for (let written = 0; written < PRETOUCH_MB * 1e6; written += chunk.length) writeSync(fd, chunk);
  } finally {
    closeSync(fd);
    rmSync(file, { force: true });
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return `${(PRETOUCH_MB / seconds).toFixed(0)} MB/s`;
}

async function oneRound(
  ctx: ColdPathContext,
  upstream: RegistryProcess,
  image: BenchImage,
  warmUp: BenchImage,
  label: string,
  straceFile: string | undefined,
): Promise<Sample> {
  const cacheDir = join(ctx.runDir, `cold-cache-${label}`);
  const proxy = await startRegistry({ proxy: { remoteUrl: upstream.url } });
  onStop(() => proxy.stop());
  const floorProcess = await startPassThroughProcess(
    upstream.url,
    join(ctx.runDir, `cold-floor-${label}.log`),
  );
  onStop(() => floorProcess.stop());
  const gateway: BenchGateway = await startGateway({
    ...ctx.gateway,
    env: { ...ctx.gateway.env, ...GATEWAY_ENV },
    nodeArgs: [...(ctx.gateway.nodeArgs ?? []), ...NODE_ARGS],
    upstream: {
      ...upstream,
      credentials: { username: 'gatehouse-service', password: 'ignored' },
    } as RegistryProcess,
    cacheDir,
    logFile: join(ctx.runDir, `cold-gateway-${label}.log`),
  });
  try {
    const bearer = `Bearer ${await fetchToken(gateway, ctx.member, [image.repository, warmUp.repository])}`;
    const manifest = `/v2/${image.repository}/manifests/${image.tag}`;
    const blob = `/v2/${image.repository}/blobs/${image.layer.digest}`;
    // Both middles first serve one cold GET of another layer, untimed: the figure measures the cold
    // path of a running middle, not a fresh process's first blob (the gateway's JIT and lazy set-up).
    const other = `/v2/${warmUp.repository}/blobs/${warmUp.layer.digest}`;
    await curl(gateway.url + `/v2/${warmUp.repository}/manifests/${warmUp.tag}`, bearer);
    await curl(gateway.url + other, bearer);
    await curl(proxy.url + other);
    await curl(floorProcess.url + other);
    await settle(gateway.pid);
    await settle(proxy.pid!);
    await settle(floorProcess.pid);
    await curl(gateway.url + manifest, bearer);
    const direct = await curl(upstream.url + blob);

    const proxyPid = proxy.pid!;
    const pt0 = threadCpu(proxyPid);
    const pf0 = minorFaults(proxyPid);
    const touched = [pretouch(ctx.runDir)];
    const p0 = cpuSeconds(proxyPid);
    const viaProxy = await curl(proxy.url + blob);
    const proxyCpuAtLastByteS = cpuSeconds(proxyPid) - p0;
    const proxyCpuS = (await settle(proxyPid)) - p0;
    const proxyThreads = `${threadDelta(pt0, threadCpu(proxyPid))}, ${minorFaults(proxyPid) - pf0} minor faults`;

    let tracer: ChildProcess | undefined;
    if (straceFile) {
      const args =
        TRACER === 'perf'
          ? ['record', '-e', 'cpu-clock', '-F', '2000', '-g', '-o', straceFile, '-p', String(gateway.pid)]
          : ['-f', '-c', '-o', straceFile, '-p', String(gateway.pid)];
      tracer = spawn(TRACER!, args, { stdio: ['ignore', 'ignore', 'inherit'] });
      await new Promise((r) => setTimeout(r, 500));
    }
    touched.push(pretouch(ctx.runDir));
    const g0 = cpuSeconds(gateway.pid);
    const gt0 = threadCpu(gateway.pid);
    const gf0 = minorFaults(gateway.pid);
    const viaGateway = await curl(gateway.url + blob, bearer);
    const gatewayCpuS = (await settle(gateway.pid)) - g0;
    const gatewayThreads = `${threadDelta(gt0, threadCpu(gateway.pid))}, ${minorFaults(gateway.pid) - gf0} minor faults`;
    if (tracer) {
      if (tracer.exitCode === null && tracer.signalCode === null) {
        tracer.kill('SIGINT');
        await new Promise((r) => tracer!.once('exit', r));
      }
    }
    touched.push(pretouch(ctx.runDir));
    const f0 = cpuSeconds(floorProcess.pid);
    const floor = await curl(floorProcess.url + blob);
    const floorCpuS = (await settle(floorProcess.pid)) - f0;
    const cached = {
      direct: await curl(upstream.url + blob),
      proxy: await curl(proxy.url + blob),
      gateway: await curl(gateway.url + blob, bearer),
    };
    for (const t of [direct, viaProxy, viaGateway, floor, cached.direct, cached.proxy, cached.gateway]) {
      if (t.bytes !== image.layer.size)
        throw new Error(`${label}: ${t.bytes} bytes, expected ${image.layer.size}`);
    }
    return {
      direct,
      proxy: viaProxy,
      gateway: viaGateway,
      floor,
      proxyCpuS,
      proxyCpuAtLastByteS,
      gatewayCpuS,
      floorCpuS,
      cached,
      proxyThreads,
      gatewayThreads,
      pretouch: `pre-touch before proxy, gateway, pass-through: ${touched.join(', ')}`,
    };
  } finally {
    await gateway.stop();
    await proxy.stop();
    await floorProcess.stop();
    rmSync(cacheDir, { recursive: true, force: true });
  }
}

const ALL_LINKS: Array<{ rateMbit: number | undefined; ratioTarget: number | undefined }> = [
  { rateMbit: undefined, ratioTarget: undefined },
  { rateMbit: 1000, ratioTarget: 1.03 },
  { rateMbit: 10000, ratioTarget: 1.5 },
];
// BENCH_COLD_LINKS=0,1000 picks links by rate (0: loopback).
const LINKS = ALL_LINKS.filter((l) =>
  (process.env.BENCH_COLD_LINKS || '0,1000,10000')
    .split(',')
    .map(Number)
    .includes(l.rateMbit ?? 0),
);

export async function coldPathFigure(ctx: ColdPathContext): Promise<{ rows: Row[]; raw: unknown }> {
  const rows: Row[] = [];
  const raw: Record<string, unknown> = {};
  const fmt = (n: number, d = 0): string => n.toFixed(d);
  for (const [index, spec] of LINKS.entries()) {
    let link: ShapedLink | undefined;
    let upstream = ctx.upstream;
    if (spec.rateMbit !== undefined) {
      link = makeShapedLink(spec.rateMbit, index);
      upstream = await startRegistry({
        copyFrom: ctx.seed.storageDir,
        netns: link.netns,
        host: link.upstreamAddress,
      });
    }
    const linkName = link?.name ?? 'loopback';
    try {
      // The 64 MiB layer shows the per-chunk cost; loopback only.
      const images = spec.rateMbit === undefined ? [ctx.seed.big, ctx.seed.flight] : [ctx.seed.big];
      for (const image of images) {
        const size = `${fmt(image.layer.size / 1e6)} MB`;
        ctx.log(`figure 12: cold GET of the ${size} layer, ${linkName}, ${REPEATS}x (curl for every row)`);
        // The upstream's file into the page cache, as for every later row.
        await curl(`${upstream.url}/v2/${image.repository}/blobs/${image.layer.digest}`);
        const samples: Sample[] = [];
        for (let i = 0; i < REPEATS; i++) {
          const label = `${index}-${image.layer.size}-${i}`;
          const trace =
            TRACER && index === 0 && i === REPEATS - 1
              ? join(
                  ctx.runDir,
                  `${TRACER}-cold-${linkName.replace(/[^a-z0-9]+/gi, '-')}-${image.layer.size}.${TRACER === 'perf' ? 'data' : 'txt'}`,
                )
              : undefined;
          const warmUp = image === ctx.seed.big ? ctx.seed.flight : ctx.seed.big;
          const s = await oneRound(ctx, upstream, image, warmUp, label, trace);
          samples.push(s);
          ctx.log(
            `  run ${i + 1}: direct ${fmt(s.direct.totalMs)} ms, proxy ${fmt(s.proxy.totalMs)} ms ` +
              `(${fmt(s.proxyCpuS, 2)} s CPU, ${fmt(s.proxyCpuAtLastByteS, 2)} s at the last byte), gateway ${fmt(s.gateway.totalMs)} ms (${fmt(s.gatewayCpuS, 2)} s CPU), ` +
              `Node pass-through ${fmt(s.floor.totalMs)} ms (${fmt(s.floorCpuS, 2)} s CPU)\n` +
              `    threads: proxy ${s.proxyThreads}; gateway ${s.gatewayThreads}; ${s.pretouch}`,
          );
        }
        raw[`${linkName} ${size}`] = samples;
        const d = median(samples.map((s) => s.direct.totalMs));
        const p = median(samples.map((s) => s.proxy.totalMs));
        const g = median(samples.map((s) => s.gateway.totalMs));
        const gb = image.layer.size / 1e9;
        const pc = median(samples.map((s) => s.proxyCpuS)) / gb;
        const gc = median(samples.map((s) => s.gatewayCpuS)) / gb;
        const f = median(samples.map((s) => s.floor.totalMs));
        const fc = median(samples.map((s) => s.floorCpuS)) / gb;
        const measure = `cold GET, ${size} layer, ${linkName} (curl)`;
        rows.push({
          figure: '12',
          measure: `${measure}: distribution proxy`,
          gatehouse: `${fmt(p)} ms (not Gatehouse)`,
          reference: `${fmt(d)} ms direct`,
          ratio: `${fmt(p / d, 2)}×`,
          target: '(reported)',
          met: null,
        });
        rows.push({
          figure: '12',
          measure: `${measure}: Gatehouse vs direct`,
          gatehouse: `${fmt(g)} ms`,
          reference: `${fmt(d)} ms direct`,
          ratio: `${fmt(g / d, 2)}×`,
          target: spec.ratioTarget ? `≤ ${spec.ratioTarget}×` : '(reported)',
          met: spec.ratioTarget && image === ctx.seed.big ? g / d <= spec.ratioTarget : null,
        });
        rows.push({
          figure: '12',
          measure: `${measure}: Gatehouse vs distribution proxy`,
          gatehouse: `${fmt(g)} ms`,
          reference: `${fmt(p)} ms proxy`,
          ratio: `${fmt(g / p, 2)}×`,
          target: spec.rateMbit === undefined && image === ctx.seed.big ? '≤ 1.0×' : '(reported)',
          met: spec.rateMbit === undefined && image === ctx.seed.big ? g <= p : null,
        });
        rows.push({
          figure: '12',
          measure: `${measure}: bare Node pass-through (the floor: no auth, hash or file) vs distribution proxy`,
          gatehouse: `${fmt(f)} ms (not Gatehouse)`,
          reference: `${fmt(p)} ms proxy`,
          ratio: `${fmt(f / p, 2)}×`,
          target: '(reported)',
          met: null,
        });
        const cd = median(samples.map((s) => s.cached.direct.totalMs));
        const cp = median(samples.map((s) => s.cached.proxy.totalMs));
        const cg = median(samples.map((s) => s.cached.gateway.totalMs));
        rows.push({
          figure: '12',
          measure: `cached GET, ${size} layer, ${linkName} (curl): distribution proxy`,
          gatehouse: `${fmt(cp)} ms (not Gatehouse)`,
          reference: `${fmt(cd)} ms direct`,
          ratio: `${fmt(cp / cd, 2)}×`,
          target: '(reported)',
          met: null,
        });
        rows.push({
          figure: '12',
          measure: `cached GET, ${size} layer, ${linkName} (curl): Gatehouse vs distribution proxy`,
          gatehouse: `${fmt(cg)} ms`,
          reference: `${fmt(cp)} ms proxy`,
          ratio: `${fmt(cg / cp, 2)}×`,
          target: '(reported)',
          met: null,
        });
        rows.push({
          figure: '12',
          measure: `${measure}: CPU of the middle process per GB`,
          gatehouse: `${fmt(gc, 2)} s/GB`,
          reference: `${fmt(pc, 2)} s/GB proxy`,
          ratio: `${fmt(gc / pc, 2)}×`,
          target: image === ctx.seed.big ? '≤ 1.0×' : '(reported)',
          met: image === ctx.seed.big ? gc <= pc : null,
        });
        const pl = median(samples.map((s) => s.proxyCpuAtLastByteS)) / gb;
        rows.push({
          figure: '12',
          measure: `${measure}: CPU per GB, Gatehouse vs the proxy's CPU at the client's last byte (its store unfinished)`,
          gatehouse: `${fmt(gc, 2)} s/GB`,
          reference: `${fmt(pl, 2)} s/GB proxy`,
          ratio: `${fmt(gc / pl, 2)}×`,
          target: '(reported)',
          met: null,
        });
        rows.push({
          figure: '12',
          measure: `${measure}: CPU per GB of the bare Node pass-through (the floor, not Gatehouse)`,
          gatehouse: `${fmt(fc, 2)} s/GB`,
          reference: `${fmt(pc, 2)} s/GB proxy`,
          ratio: `${fmt(fc / pc, 2)}×`,
          target: '(reported)',
          met: null,
        });
      }
    } finally {
      if (link) {
        await upstream.stop();
        link.remove();
      }
    }
  }
  writeFileSync(join(ctx.runDir, 'cold-path.json'), JSON.stringify(raw, null, 2));
  return { rows, raw };
}
