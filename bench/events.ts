import { createServer } from 'node:http';
import { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';
import { Pool } from 'undici';
import { loadAverage, median, now, percentile } from './measure';
import { BenchGateway, cli } from './stack';
import { Row } from './table';

// Figure 11 (issue 27): events through the outbox to a webhook. The built gateway gets
// EVENTS_RATE requests a second for a repository the member is not entitled to (each one audit
// row and one access.refused event) for EVENTS_SECONDS; a receiver in this process verifies every
// signature with the standardwebhooks library and measures each event's latency from its `time`
// (the audit row's) to its arrival. Warm manifest GETs run alone, then beside the same load for
// EVENTS_CONTROL_SECONDS (15) with no subscription, then beside the measured run: what the
// events cost the pull path, apart from what the requests themselves cost it. Called from
// bench/run.ts (BENCH_FIGURES=11 runs only this).

const RATE = Number(process.env.EVENTS_RATE || 1000);
const SECONDS = Number(process.env.EVENTS_SECONDS || 60);
/** The same load first without a subscription: what the requests cost the pulls, events aside. */
const CONTROL_SECONDS = Number(process.env.EVENTS_CONTROL_SECONDS || 15);
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

async function pullLatencies(pull: () => Promise<void>, until: () => boolean): Promise<number[]> {
  const out: number[] = [];
  while (!until()) {
    const t = now();
    await pull();
    out.push(now() - t);
  }
  return out;
}

export async function eventsFigure(input: EventsFigureInput): Promise<Row[]> {
  const { gateway, log } = input;
  log(`figure 11: ${RATE} events/s for ${SECONDS} s through the outbox to a signed webhook`);
  const latencies: number[] = [];
  const seen = new Set<string>();
  let duplicates = 0;
  let badSignatures = 0;
  let secret = '';
  let countFrom = Infinity;
  const receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      try {
        const body = Buffer.concat(chunks).toString('utf8');
        const event = new Webhook(secret).verify(body, req.headers as Record<string, string>) as {
          id: string;
          time: string;
        };
        if (Date.parse(event.time) < countFrom) {
          res.writeHead(204).end();
          return;
        }
        if (seen.has(event.id)) duplicates++;
        else {
          seen.add(event.id);
          latencies.push(Date.now() - Date.parse(event.time));
        }
        res.writeHead(204).end();
      } catch {
        badSignatures++;
        res.writeHead(401).end();
      }
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', () => r()));
  const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
  let added: { id: string; secret: string } | undefined;

  const pool = new Pool(gateway.url, { connections: 32, pipelining: 1 });
  /** RATE refused requests a second for `seconds`, warm manifest GETs timed beside them. */
  const drive = async (seconds: number) => {
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
    return { sent, failed, during, sentSeconds: (now() - started) / 1000 };
  };
  try {
    // Pulls alone first, then beside the same load with no subscription (events made, none sent).
    const aloneUntil = now() + 5_000;
    const alone = await pullLatencies(input.pullManifest, () => now() > aloneUntil);
    const control = CONTROL_SECONDS > 0 ? (await drive(CONTROL_SECONDS)).during : [];
    await new Promise((r) => setTimeout(r, 3_000));

    added = JSON.parse(
      await cli(gateway.env, ['webhook', 'add', url, '--type', 'access.refused', '--format', 'json']),
    ) as { id: string; secret: string };
    secret = added.secret;
    countFrom = Date.now();
    const { sent, failed, during, sentSeconds } = await drive(SECONDS);
    // Every event must arrive: wait for the outbox to drain (bounded).
    const drainUntil = now() + 60_000;
    while (seen.size < sent - failed && now() < drainUntil) await new Promise((r) => setTimeout(r, 100));
    const p50 = percentile(latencies, 50);
    const p99 = percentile(latencies, 99);
    const delivered = seen.size;
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
      pullAloneMs: { p50: median(alone), p99: percentile(alone, 99) },
      pullControlMs: { p50: median(control), p99: percentile(control, 99) },
      pullDuringMs: { p50: median(during), p99: percentile(during, 99) },
      loadAverage: loadAverage(),
    };
    input.raw.events = result;
    log(
      `  sent ${sent} (${fmt(result.sentPerSecond)}/s, ${failed} failed), delivered ${delivered}, ` +
        `latency p50 ${fmt(p50)} ms p99 ${fmt(p99)} ms max ${fmt(result.latencyMs.max)} ms, duplicates ${duplicates}; ` +
        `warm manifest p99 alone ${fmt(result.pullAloneMs.p99, 2)} ms, beside the load without webhooks ` +
        `${fmt(result.pullControlMs.p99, 2)} ms, with them ${fmt(result.pullDuringMs.p99, 2)} ms; load ${result.loadAverage}`,
    );
    return [
      {
        figure: '11',
        measure: `events: ${RATE}/s for ${SECONDS} s to a signed webhook, delivery latency p99`,
        gatehouse: `${fmt(result.sentPerSecond)}/s sent, ${delivered}/${sent - failed} delivered, p99 ${fmt(p99)} ms`,
        reference: '—',
        ratio: '—',
        target: 'all delivered, p99 < 2000 ms',
        met: delivered === sent - failed && p99 < 2000,
      },
      {
        figure: '11',
        measure: 'warm manifest GET p99 beside the load with webhooks, vs the same load without',
        gatehouse: `${fmt(result.pullDuringMs.p99, 2)} ms (alone ${fmt(result.pullAloneMs.p99, 2)} ms)`,
        reference: `${fmt(result.pullControlMs.p99, 2)} ms without webhooks`,
        ratio: `${fmt(result.pullDuringMs.p99 / result.pullControlMs.p99, 2)}×`,
        target: '(reported)',
        met: null,
      },
    ];
  } finally {
    await pool.close();
    if (added) await cli(gateway.env, ['webhook', 'remove', added.id]).catch(() => undefined);
    receiver.closeAllConnections();
    await new Promise((r) => receiver.close(r));
  }
}
