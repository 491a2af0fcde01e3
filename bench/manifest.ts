import { request } from 'undici';
import { errorCount, wrk, WrkResult } from './load';
import { ACCEPT_MANIFESTS, median, now } from './measure';
import { Row } from './table';

// Figure 2: warm manifest GET by tag, 32 connections, through the gateway and straight from the
// registry (without and with htpasswd), in BENCH_MANIFEST_ROUNDS (3) alternated rounds, medians
// reported. The gateway's rate counts its audit work: after each of its runs the bench waits for
// `gatehouse_audit_queue_depth` (from /metrics) to reach 0 and divides the requests by the run
// plus that drain, so a writer that fell behind neither flatters the gateway nor steals CPU
// from the registry's run that follows. Called from bench/run.ts.

const ROUNDS = Number(process.env.BENCH_MANIFEST_ROUNDS || 3);
const fmt = (n: number, digits = 0): string => n.toFixed(digits);

export interface ManifestFigureInput {
  gatewayUrl: string;
  registryUrl: string;
  registryAuthUrl: string;
  manifestPath: string;
  bearer: () => Promise<string>;
  upstreamAuth: string;
  seconds: number;
  warmupSeconds: number;
  raw: Record<string, unknown>;
  log: (s: string) => void;
}

async function auditQueueDepth(gatewayUrl: string): Promise<number> {
  const res = await request(`${gatewayUrl}/metrics`);
  const text = await res.body.text();
  const m = /^gatehouse_audit_queue_depth(?:\{[^}]*\})? (\d+(?:\.\d+)?)$/m.exec(text);
  return m ? Number(m[1]) : NaN;
}

export async function manifestFigure(input: ManifestFigureInput): Promise<Row[]> {
  const { log, seconds } = input;
  log(
    `figure 2: warm manifest GET by tag, 32 connections, ${seconds} s per run, ${ROUNDS} alternated rounds`,
  );
  const run = async (
    name: string,
    url: string,
    auth?: string,
  ): Promise<WrkResult & { requestsPerSecond: number }> => {
    const headers: Record<string, string> = {
      Accept: ACCEPT_MANIFESTS,
      ...(auth ? { Authorization: auth } : {}),
    };
    await wrk({ url, headers, connections: 32, seconds: input.warmupSeconds });
    const r = await wrk({ url, headers, connections: 32, seconds });
    if (errorCount(r) > 0) log(`  ${name}: errors ${JSON.stringify(r.errors)}`);
    return r;
  };
  const gateway: Array<
    WrkResult & { requestsPerSecond: number; sustained: number; drainMs: number; depth: number }
  > = [];
  const registry: Array<WrkResult & { requestsPerSecond: number }> = [];
  const registryAuth: Array<WrkResult & { requestsPerSecond: number }> = [];
  for (let round = 1; round <= ROUNDS; round++) {
    const g = await run('gatehouse', `${input.gatewayUrl}${input.manifestPath}`, await input.bearer());
    const depth = await auditQueueDepth(input.gatewayUrl);
    const drainStarted = now();
    while ((await auditQueueDepth(input.gatewayUrl)) > 0 && now() - drainStarted < 60_000)
      await new Promise((r) => setTimeout(r, 20));
    const drainMs = depth > 0 ? now() - drainStarted : 0;
    const sustained = g.requests / (seconds + drainMs / 1000);
    gateway.push({ ...g, sustained, drainMs, depth });
    const reg = await run('registry (no auth)', `${input.registryUrl}${input.manifestPath}`);
    registry.push(reg);
    const regAuth = await run(
      'registry (htpasswd)',
      `${input.registryAuthUrl}${input.manifestPath}`,
      input.upstreamAuth,
    );
    registryAuth.push(regAuth);
    log(
      `  round ${round}: gatehouse ${fmt(g.requestsPerSecond)} req/s (p99 ${fmt(g.latencyUs.p99 / 1000, 2)} ms; ` +
        `audit queue ${depth} at the end, drained in ${fmt(drainMs)} ms: ${fmt(sustained)} req/s sustained), ` +
        `registry ${fmt(reg.requestsPerSecond)} req/s (p99 ${fmt(reg.latencyUs.p99 / 1000, 2)} ms), ` +
        `with htpasswd ${fmt(regAuth.requestsPerSecond)} req/s`,
    );
  }
  input.raw.manifest = { rounds: ROUNDS, gatehouse: gateway, registry, registryHtpasswd: registryAuth };
  const ok = gateway.every((g) => errorCount(g) === 0);
  const gRate = median(gateway.map((g) => g.sustained));
  const regRate = median(registry.map((r) => r.requestsPerSecond));
  const regAuthRate = median(registryAuth.map((r) => r.requestsPerSecond));
  const gP50 = median(gateway.map((g) => g.latencyUs.p50)) / 1000;
  const gP99 = median(gateway.map((g) => g.latencyUs.p99)) / 1000;
  const rP50 = median(registry.map((r) => r.latencyUs.p50)) / 1000;
  const rP99 = median(registry.map((r) => r.latencyUs.p99)) / 1000;
  return [
    {
      figure: '2',
      measure: `warm manifest by tag, 32 conns: requests/s sustained, audit included (median of ${ROUNDS})`,
      gatehouse: `${fmt(gRate)} req/s${ok ? '' : ' (with errors)'}`,
      reference: `${fmt(regRate)} req/s registry (no auth); ${fmt(regAuthRate)} with htpasswd`,
      ratio: `${fmt(gRate / regRate, 2)}×`,
      target: '≥ 2×',
      met: ok && gRate / regRate >= 2,
    },
    {
      figure: '2',
      measure: `warm manifest by tag, 32 conns: p50 / p99 (median of ${ROUNDS})`,
      gatehouse: `${fmt(gP50, 2)} / ${fmt(gP99, 2)} ms`,
      reference: `${fmt(rP50, 2)} / ${fmt(rP99, 2)} ms`,
      ratio: `p99 ${fmt(gP99 / rP99, 2)}×`,
      target: 'p99 no worse',
      met: gP99 <= rP99,
    },
  ];
}
