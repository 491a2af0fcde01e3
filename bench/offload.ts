import { userInfo } from 'node:os';
import { join } from 'node:path';
// eslint-disable-next-line no-restricted-imports
import { startTestNginx } from '../libs/testing/src/nginx';
import { errorCount, wrk } from './load';
import { loadAverage, pullImage } from './measure';
import { Row } from './table';
import { BenchImage } from './seed';
import {
  BenchGateway,
  BenchMember,
  BenchNginx,
  BenchPostgres,
  BenchRegistries,
  fetchToken,
  startGateway,
} from './stack';

// Figure 10 (issue 19): the cached 200 MB blob through nginx running docker/nginx.conf, with the
// gateway's blob offload on (nginx sends the file: X-Accel-Redirect) and off (the gateway streams
// it through nginx), against the registry alone and nginx serving the file, 1 and 8 connections.
// Called from bench/run.ts (BENCH_FIGURES=10 runs only this).

/** What bench/run.ts has at hand: its PostgreSQL, registries, figure 1's gateway and nginx. */
export interface OffloadFigureInput {
  pg: BenchPostgres;
  registries: BenchRegistries;
  /** The gateway figure 1 measures (offload off); its cache already holds the blob. */
  gateway: BenchGateway;
  member: BenchMember;
  big: BenchImage;
  /** Plain nginx serving the blob file at /data. */
  nginx: BenchNginx;
  run: string;
  raw: Record<string, unknown>;
  log: (s: string) => void;
}

const SECONDS = Number(process.env.BENCH_SECONDS || 10);
const WARMUP_SECONDS = Math.min(3, SECONDS);
const MB = 1e6;
const fmt = (n: number, digits = 0): string => n.toFixed(digits);
const LOCATION = '/_gatehouse/blobs/gateway/';

export async function offloadFigure(o: OffloadFigureInput): Promise<Row[]> {
  const blobPath = `/v2/${o.big.repository}/blobs/${o.big.layer.digest}`;
  const blobSize = o.big.layer.size;
  const loadAtStart = loadAverage();
  o.log(
    `figure 10: cached blob through nginx, offload on/off (${fmt(blobSize / MB)} MB); load ${loadAtStart}`,
  );
  const cacheDir = join(o.run, 'cache-offload');
  const offloaded = await startGateway({
    postgresUrl: o.pg.url,
    upstream: o.registries.upstream,
    dataDir: join(o.run, 'data-offload'),
    cacheDir,
    logFile: join(o.run, 'gateway-offload.log'),
    env: {
      OCI_BLOB_OFFLOAD: 'x-accel-redirect',
      OCI_BLOB_OFFLOAD_LOCATION: LOCATION,
      TRUST_PROXY: 'loopback',
      // A second gateway on the same database must hold the first one's secrets (or it refuses to start).
      TOKEN_SIGNING_KEY_FILE: join(String(o.gateway.env.DATA_DIR), 'token-signing-key.pem'),
      ACCESS_KEY_SECRET_FILE: join(String(o.gateway.env.DATA_DIR), 'access-key-secret'),
    },
  });
  const port = (gw: BenchGateway): number => Number(new URL(gw.url).port);
  // Both gateway names of the shipped file point at the one gateway under test.
  const withOffload = await startTestNginx({
    upstreams: [port(offloaded), port(offloaded)],
    offload: { user: userInfo().username, cacheDirs: [cacheDir, cacheDir] },
  });
  const streaming = await startTestNginx({ upstreams: [port(o.gateway), port(o.gateway)] });
  try {
    const offloadAuth = `Bearer ${await fetchToken(offloaded, o.member, [o.big.repository])}`;
    const streamAuth = `Bearer ${await fetchToken(o.gateway, o.member, [o.big.repository])}`;
    await pullImage(offloaded.url, o.big.repository, o.big.tag, offloadAuth);
    const targets: Record<string, { url: string; headers: Record<string, string> }> = {
      'offload via nginx': {
        url: `${withOffload.url}${blobPath}`,
        headers: { Authorization: offloadAuth },
      },
      'streamed via nginx': { url: `${streaming.url}${blobPath}`, headers: { Authorization: streamAuth } },
      registry: { url: `${o.registries.open.url}${blobPath}`, headers: {} },
      nginx: { url: `${o.nginx.url}/data`, headers: {} },
    };
    const results: Record<string, Record<number, number>> = {};
    const raw: Record<string, unknown> = { loadAtStart };
    o.raw.offload = raw;
    for (const [name, target] of Object.entries(targets)) {
      await wrk({ ...target, connections: 8, seconds: WARMUP_SECONDS, timeoutSeconds: 60 });
      for (const c of [1, 8]) {
        const r = await wrk({ ...target, connections: c, seconds: SECONDS, timeoutSeconds: 60 });
        if (errorCount(r) > 0 && r.requests === 0)
          throw new Error(`${name} blob run failed: ${JSON.stringify(r.errors)}`);
        (results[name] ??= {})[c] = r.bytesPerSecond;
        raw[`${name}-${c}`] = r;
        o.log(
          `  ${name} c=${c}: ${fmt(r.bytesPerSecond / MB)} MB/s (${r.requests} bodies, errors ${JSON.stringify(r.errors)})`,
        );
      }
    }
    raw.loadAtEnd = loadAverage();
    const rows: Row[] = [];
    for (const c of [1, 8]) {
      const off = results['offload via nginx'][c];
      const conns = `${c} connection${c > 1 ? 's' : ''}`;
      for (const [ref, label] of [
        ['streamed via nginx', 'gateway streaming via nginx'],
        ['registry', 'registry'],
        ['nginx', 'plain nginx'],
      ] as const) {
        rows.push({
          figure: '10',
          measure: `cached blob via nginx with offload, ${conns}, vs ${label}`,
          gatehouse: `${fmt(off / MB)} MB/s`,
          reference: `${fmt(results[ref][c] / MB)} MB/s ${label}`,
          ratio: `${fmt(off / results[ref][c], 2)}×`,
          target: '(reported)',
          met: null,
        });
      }
    }
    return rows;
  } finally {
    await withOffload.stop();
    await streaming.stop();
    await offloaded.stop();
  }
}
