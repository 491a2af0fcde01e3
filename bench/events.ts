import { join } from 'node:path';
import { Pool, request } from 'undici';
import { loadAverage, median, now, percentile } from './measure';
import { readdirSync, readFileSync } from 'node:fs';
import { cpuSeconds } from './cold';
import { BENCH_DIR } from './paths';
import { BenchGateway, cli, startWebhookReceiverProcess } from './stack';
import { Row } from './table';

// Figure 11 (issue 27): events through the outbox to a webhook. The built gateway gets
// EVENTS_RATE requests a second for a repository the member is not entitled to (each one audit
// row and one access.refused event) for EVENTS_SECONDS; a receiver in a process of its own
// (bench/webhook-receiver.ts) verifies every signature with the standardwebhooks library and
// measures each event's latency from its `time` (the audit row's) to its arrival.
// Warm manifest GETs are timed alone, then beside the same load with no subscription for
// EVENTS_CONTROL_SECONDS (30) before and again after the measured run, then beside the measured
// run: what the events cost the pull path, apart from what the requests cost it. "Within noise":
// the median of the measured run's 15 s windows' p99 is no higher than the highest p99 of the
// control windows. Called from bench/run.ts (BENCH_FIGURES=11 runs only this).

const RATE = Number(process.env.EVENTS_RATE || 1000);
const SECONDS = Number(process.env.EVENTS_SECONDS || 60);
/** The same load first without a subscription: what the requests cost the pulls, events aside. */
const CONTROL_SECONDS = Number(process.env.EVENTS_CONTROL_SECONDS || 30);
/** The pulls' p99 is compared per window of this many seconds, so runs of different lengths compare. */
const WINDOW_MS = 15_000;
const fmt = (n: number, digits = 0): string => n.toFixed(digits);

export interface EventsFigureInput {
  gateway: BenchGateway;
  /** The bench member's Bearer token (its requests for other repositories are refused). */
  auth: string;
  /** A warm manifest GET on the gateway (resolves when answered). */
  pullManifest: () => Promise<void>;
  raw: Record<string, unknown>;
  log: (s: string) => void;
}

/** CPU seconds of every PostgreSQL process on the machine (the bench's own server does the work). */
function postgresCpuSeconds(): number {
  let total = 0;
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      if (stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')) !== 'postgres') continue;
      total += cpuSeconds(Number(pid));
    } catch {
      // the process ended
    }
  }
  return total;
}

interface Timed {
  at: number;
  ms: number;
}

async function pullLatencies(pull: () => Promise<void>, until: () => boolean): Promise<Timed[]> {
  const out: Timed[] = [];
  while (!until()) {
    const t = now();
    await pull();
    out.push({ at: t, ms: now() - t });
  }
  return out;
}

/** The p99 of each whole WINDOW_MS window (a last partial window counts when over half full). */
function windowP99s(samples: Timed[]): number[] {
  if (samples.length === 0) return [];
  const from = samples[0].at;
  const buckets: number[][] = [];
  for (const s of samples) (buckets[Math.floor((s.at - from) / WINDOW_MS)] ??= []).push(s.ms);
  const last = samples[samples.length - 1].at - from;
  const keep = last % WINDOW_MS > WINDOW_MS / 2 ? buckets.length : Math.max(1, buckets.length - 1);
  return buckets.slice(0, keep).map((b) => percentile(b ?? [], 99));
}

const ms = (xs: Timed[]): number[] => xs.map((x) => x.ms);

export async function eventsFigure(input: EventsFigureInput): Promise<Row[]> {
  const { gateway, log } = input;
  log(`figure 11: ${RATE} events/s for ${SECONDS} s through the outbox to a signed webhook`);
  const receiver = await startWebhookReceiverProcess(join(BENCH_DIR, 'webhook-receiver.log'));
  const url = `${receiver.url}/hook`;
  const control = async (path: string, body?: unknown): Promise<unknown> => {
    const res = await request(`${receiver.url}${path}`, {
      method: body === undefined ? 'GET' : 'PUT',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return res.statusCode === 200 ? res.body.json() : res.body.dump();
  };
  const stats = async () =>
    (await control('/stats')) as {
      delivered: number;
      duplicates: number;
      badSignatures: number;
      latencies: number[];
    };
  let added: { id: string; secret: string } | undefined;

  const pool = new Pool(gateway.url, { connections: 32, pipelining: 1 });
  /** RATE refused requests a second for `seconds`, warm manifest GETs timed beside them. */
  const drive = async (seconds: number) => {
    const g0 = cpuSeconds(gateway.pid);
    const r0 = cpuSeconds(receiver.pid);
    const p0 = postgresCpuSeconds();
    const started = now();
    const endAt = started + seconds * 1000;
    let sent = 0;
    let failed = 0;
    const inFlight = new Set<Promise<void>>();
    const fire = (i: number): void => {
      const p = pool
        .request({
          method: 'GET',
          path: `/v2/acme/not-entitled-${i % 100}/manifests/v1`,
          headers: { authorization: input.auth },
        })
        .then(
          (r) => r.body.dump(),
          () => void failed++,
        )
        .finally(() => inFlight.delete(p));
      inFlight.add(p);
    };
    const pulls = pullLatencies(input.pullManifest, () => now() > endAt);
    const tickMs = 20;
    while (now() < endAt) {
      const due = Math.floor(((now() - started) / 1000) * RATE);
      while (sent < due) fire(sent++);
      await new Promise((r) => setTimeout(r, tickMs));
    }
    const during = await pulls;
    await Promise.allSettled([...inFlight]);
    const sentSeconds = (now() - started) / 1000;
    // Cores used meanwhile (all threads): the gateway's, and the receiver's, which shares this machine.
    const cores = {
      gateway: (cpuSeconds(gateway.pid) - g0) / sentSeconds,
      receiver: (cpuSeconds(receiver.pid) - r0) / sentSeconds,
      postgres: (postgresCpuSeconds() - p0) / sentSeconds,
    };
    return { sent, failed, during, sentSeconds, cores };
  };
  try {
    // Pulls alone first, then beside the same load with no subscription (events made, none sent).
    const aloneUntil = now() + 5_000;
    const alone = await pullLatencies(input.pullManifest, () => now() > aloneUntil);
    const before = CONTROL_SECONDS > 0 ? await drive(CONTROL_SECONDS) : null;
    const controlBefore = before?.during ?? [];
    await new Promise((r) => setTimeout(r, 3_000));

    added = JSON.parse(
      await cli(gateway.env, ['webhook', 'add', url, '--type', 'access.refused', '--format', 'json']),
    ) as { id: string; secret: string };
    await control('/config', { secret: added.secret, countFrom: Date.now() });
    const { sent, failed, during, sentSeconds, cores } = await drive(SECONDS);
    // Every event must arrive: wait for the outbox to drain (bounded).
    const drainUntil = now() + 60_000;
    let got = await stats();
    while (got.delivered < sent - failed && now() < drainUntil) {
      await new Promise((r) => setTimeout(r, 250));
      got = await stats();
    }
    await cli(gateway.env, ['webhook', 'remove', added.id]);
    added = undefined;
    await new Promise((r) => setTimeout(r, 3_000));
    const controlAfter = CONTROL_SECONDS > 0 ? (await drive(CONTROL_SECONDS)).during : [];

    const { latencies, delivered, duplicates, badSignatures } = got;
    const p50 = percentile(latencies, 50);
    const p99 = percentile(latencies, 99);
    const controlWindows = [...windowP99s(controlBefore), ...windowP99s(controlAfter)];
    const duringWindows = windowP99s(during);
    const noiseCeiling = Math.max(...controlWindows);
    const duringMedian = median(duringWindows);
    const both = [...controlBefore, ...controlAfter];
    const result = {
      rate: RATE,
      seconds: SECONDS,
      sent,
      failed,
      sentPerSecond: sent / sentSeconds,
      delivered,
      duplicates,
      badSignatures,
      latencyMs: { p50, p99, max: Math.max(...latencies) },
      pullAloneMs: { p50: median(ms(alone)), p99: percentile(ms(alone), 99) },
      pullControlMs: { p50: median(ms(both)), p99: percentile(ms(both), 99), windowP99s: controlWindows },
      pullDuringMs: { p50: median(ms(during)), p99: percentile(ms(during), 99), windowP99s: duringWindows },
      coresUsed: { control: before?.cores ?? null, withWebhooks: cores },
      loadAverage: loadAverage(),
    };
    input.raw.events = result;
    const list = (xs: number[]) => xs.map((x) => fmt(x, 1)).join(', ');
    log(
      `  sent ${sent} (${fmt(result.sentPerSecond)}/s, ${failed} failed), delivered ${delivered}, ` +
        `latency p50 ${fmt(p50)} ms p99 ${fmt(p99)} ms max ${fmt(result.latencyMs.max)} ms, duplicates ${duplicates}; ` +
        `warm manifest p99 alone ${fmt(result.pullAloneMs.p99, 2)} ms; per ${WINDOW_MS / 1000} s window beside the ` +
        `load without webhooks [${list(controlWindows)}] ms, with them [${list(duringWindows)}] ms; ` +
        `cores used by the gateway ${fmt(before?.cores.gateway ?? NaN, 2)} without webhooks, ${fmt(cores.gateway, 2)} ` +
        `with them; by PostgreSQL ${fmt(before?.cores.postgres ?? NaN, 2)} and ${fmt(cores.postgres, 2)}; ` +
        `by the receiver ${fmt(cores.receiver, 2)}; ` +
        `load ${result.loadAverage}`,
    );
    return [
      {
        figure: '11',
        measure: `events: ${RATE}/s for ${SECONDS} s to a signed webhook, delivery latency p99`,
        gatehouse: `${fmt(result.sentPerSecond)}/s sent, ${delivered}/${sent - failed} delivered, p99 ${fmt(p99)} ms`,
        reference: '—',
        ratio: '—',
        target: 'all delivered, p99 < 2000 ms',
        met: delivered === sent - failed && duplicates === 0 && p99 < 2000,
      },
      {
        figure: '11',
        measure: `warm manifest GET p99 per ${WINDOW_MS / 1000} s window beside the load with webhooks (median)`,
        gatehouse: `${fmt(duringMedian, 2)} ms (alone ${fmt(result.pullAloneMs.p99, 2)} ms)`,
        reference: `${fmt(Math.min(...controlWindows), 2)}-${fmt(noiseCeiling, 2)} ms without webhooks`,
        ratio: `${fmt(duringMedian / noiseCeiling, 2)}×`,
        target: 'within the control windows',
        met: duringMedian <= noiseCeiling,
      },
    ];
  } finally {
    await pool.close();
    if (added) await cli(gateway.env, ['webhook', 'remove', added.id]).catch(() => undefined);
    await receiver.stop();
  }
}
