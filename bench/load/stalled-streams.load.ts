import { mkdir, writeFile } from 'node:fs/promises';
import { connect, Socket } from 'node:net';
import { join, resolve } from 'node:path';
import { samplePeak, settle, startLoadStack } from './load-scenario';
import { footprint, ProcessFootprint, runPullLoad } from './pull-load';

const STALLED = Number(process.env.LOAD_STALLED ?? 1000);
const STALL_SECONDS = 30;

/**
 * `just load`, second scenario (security.md, "Stalled downloads"): one member opens STALLED GETs
 * of the cached 100 MB blob on raw sockets that never read, while other members pull; then the
 * gateway must be back at its baseline descriptors.
 */
describe('stalled downloads', () => {
  it(`${STALLED} never-reading blob GETs from one member: others unaffected, descriptors back to baseline`, async () => {
    const stack = await startLoadStack({ HTTP_SEND_STALL_SECONDS: String(STALL_SECONDS) });
    const sockets: Socket[] = [];
    try {
      const { gw, pid, url, port, credentials, target, big } = stack;
      const common = { url, service: `127.0.0.1:${port}`, target };
      const metric = async (name: string, labels = ''): Promise<number> => {
        const text = await (await fetch(`${url}/metrics`)).text();
        const m = new RegExp(`^${name}${labels.replace(/[{}]/g, '\\$&')} (\\d+)`, 'm').exec(text);
        return m ? Number(m[1]) : 0;
      };
      // The attacker: load-0. Warm the big blob into the cache with one full read.
      const tokenRes = await fetch(
        `${url}/auth/token?service=127.0.0.1:${port}&scope=repository:acme/big:pull`,
        {
          headers: { authorization: credentials[0] },
        },
      );
      const { token } = (await tokenRes.json()) as { token: string };
      const warmBig = await fetch(`${url}/v2/acme/big/blobs/${big.digest}`, {
        headers: { authorization: `Bearer ${token}` },
      });
      if ((await warmBig.arrayBuffer()).byteLength !== big.size)
        throw new Error('warm-up of the big blob failed');
      const warm = await runPullLoad({
        ...common,
        credentials: credentials.slice(1),
        clients: 2,
        durationMs: 500,
      });
      if (warm.errors > 0) throw new Error(`warm-up failed: ${warm.errorSamples.join('; ')}`);
      await settle(pid);
      const baseline = await footprint(pid, gw.inspector, { collect: true });
      const peak: ProcessFootprint = { ...baseline, collected: false };
      const sampler = samplePeak(pid, gw.inspector, peak);

      for (let i = 0; i < STALLED; i++) {
        const s = connect(port, '127.0.0.1');
        s.pause();
        s.on('error', () => undefined);
        s.write(
          `GET /v2/acme/big/blobs/${big.digest} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: Bearer ${token}\r\n\r\n`,
        );
        sockets.push(s);
      }
      // Every GET answered: a slot taken (its body stalled) or refused with 429.
      let streaming = 0;
      let refused = 0;
      const answeredBy = Date.now() + 120_000;
      while (Date.now() < answeredBy) {
        streaming = await metric('gatehouse_blob_streams_active');
        refused = await metric('gatehouse_rate_limited_total', '{scope="blob_streams"}');
        if (streaming + refused >= STALLED) break;
        await new Promise((r) => setTimeout(r, 250));
      }
      const answeredMs = Date.now() - (answeredBy - 120_000);
      await new Promise((r) => setTimeout(r, 1000));
      const during = await footprint(pid, gw.inspector, { collect: true });
      // Other members pull while the stalled streams hang.
      const others = await runPullLoad({
        ...common,
        credentials: credentials.slice(1),
        clients: 20,
        durationMs: 5000,
      });
      const health = (await fetch(`${url}/healthz`)).status;
      // Still stalled, seconds later: what each stalled stream holds must not grow with time.
      const duringLate = await footprint(pid, gw.inspector, { collect: true });
      const streamingLate = await metric('gatehouse_blob_streams_active');
      // The stall timeout closes the stalled streams; then the attacker's sockets go away.
      await waitFor(
        async () => (await metric('gatehouse_blob_streams_active')) === 0,
        (STALL_SECONDS + 10) * 1000,
      );
      const stallsClosed = await metric('gatehouse_http_send_stalls_total');
      const streamingAfter = await metric('gatehouse_blob_streams_active');
      clearInterval(sampler);
      for (const s of sockets) s.destroy();
      await settle(pid, baseline.fds);
      const after = await footprint(pid, gw.inspector, { collect: true });
      const report = {
        stalled: STALLED,
        stallSeconds: STALL_SECONDS,
        answeredMs,
        streaming,
        refused,
        stallsClosed,
        streamingAfter,
        health,
        others: {
          pulls: others.pulls,
          requests: others.requests,
          errors: others.errors,
          pullMs: others.pullMs,
        },
        baseline,
        during,
        duringLate,
        streamingLate,
        peak,
        after,
        // The live memory the stalled streams held (garbage collected), per stream.
        bytesPerStalledStream: Math.round(
          (during.heapUsedBytes + during.externalBytes - baseline.heapUsedBytes - baseline.externalBytes) /
            Math.max(1, streaming),
        ),
      };
      const out = resolve(__dirname, '../../.tmp/stalled-report.json');
      await mkdir(join(out, '..'), { recursive: true });
      await writeFile(out, JSON.stringify(report, null, 2) + '\n');
      const mib = (b: number) => `${(b / 1024 / 1024).toFixed(0)} MiB`;
      process.stdout.write(
        [
          `stalled ${STALLED} (all answered in ${answeredMs} ms): ${streaming} streaming, ${refused} refused 429, ${stallsClosed} closed by the stall timeout, ${streamingAfter} left`,
          `others: ${others.pulls} pulls, ${others.requests} requests, ${others.errors} errors, p95 ${others.pullMs.p95} ms; /healthz ${health}`,
          `fds baseline ${baseline.fds}, during ${during.fds}, peak ${peak.fds}, after ${after.fds}`,
          `RSS baseline ${mib(baseline.rssBytes)}, during ${mib(during.rssBytes)}, peak ${mib(peak.rssBytes)}, after ${mib(after.rssBytes)}`,
          `arrayBuffers baseline ${mib(baseline.arrayBuffersBytes)}, during ${mib(during.arrayBuffersBytes)}, ${Math.round((duringLate.arrayBuffersBytes - baseline.arrayBuffersBytes) / Math.max(1, streamingLate) / 1024)} KiB per stream ${streamingLate} streams later`,
          `heap+external baseline ${mib(baseline.heapUsedBytes + baseline.externalBytes)}, during ${mib(during.heapUsedBytes + during.externalBytes)}; per stalled stream ${report.bytesPerStalledStream} bytes`,
          `report: ${out}`,
          '',
        ].join('\n'),
      );
      expect(others.errorSamples).toEqual([]);
      expect(others.errors).toBe(0);
      expect(health).toBe(200);
      expect(streaming).toBeLessThanOrEqual(64);
      expect(refused).toBe(STALLED - streaming);
      expect(streamingAfter).toBe(0);
      expect(after.fds).toBeLessThanOrEqual(baseline.fds + 2);
    } finally {
      for (const s of sockets) s.destroy();
      await stack.stop();
    }
  }, 600_000);
});

async function waitFor(check: () => Promise<boolean>, ms: number): Promise<void> {
  const until = Date.now() + ms;
  while (!(await check()) && Date.now() < until) await new Promise((r) => setTimeout(r, 500));
}
