import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { runLoadScenario } from './load-scenario';

const CLIENTS = Number(process.env.LOAD_CLIENTS ?? 200);
const SECONDS = Number(process.env.LOAD_SECONDS ?? 60);

/** `just load`: the recorded run (dev-docs/security.md, "Hardening results"). */
describe('load', () => {
  it(`serves ${CLIENTS} concurrent clients pulling the multi-arch image for ${SECONDS} s without an error, and returns to its baseline`, async () => {
    const report = await runLoadScenario(CLIENTS, SECONDS * 1000);
    const out = resolve(__dirname, '../../.tmp/load-report.json');
    await mkdir(join(out, '..'), { recursive: true });
    await writeFile(out, JSON.stringify(report, null, 2) + '\n');
    const mib = (b: number) => `${(b / 1024 / 1024).toFixed(0)} MiB`;
    process.stdout.write(
      [
        `clients ${CLIENTS}, ${SECONDS} s: ${report.result.pulls} pulls, ${report.result.requests} requests, ${report.result.errors} errors`,
        `pull latency ms p50 ${report.result.pullMs.p50} p95 ${report.result.pullMs.p95} p99 ${report.result.pullMs.p99} max ${report.result.pullMs.max}`,
        `fds baseline ${report.baseline.fds}, peak ${report.peak.fds}, after ${report.after.fds}`,
        `RSS baseline ${mib(report.baseline.rssBytes)}, peak ${mib(report.peak.rssBytes)}, after ${mib(report.after.rssBytes)}`,
        `heap used baseline ${mib(report.baseline.heapUsedBytes)} (collected), peak ${mib(report.peak.heapUsedBytes)}, after idle ${mib(report.afterIdle.heapUsedBytes)}, after collection ${mib(report.after.heapUsedBytes)}`,
        `heap total baseline ${mib(report.baseline.heapTotalBytes)}, peak ${mib(report.peak.heapTotalBytes)}, after ${mib(report.after.heapTotalBytes)}`,
        `external (arrayBuffers) baseline ${mib(report.baseline.externalBytes)} (${mib(report.baseline.arrayBuffersBytes)}), peak ${mib(report.peak.externalBytes)} (${mib(report.peak.arrayBuffersBytes)}), after ${mib(report.after.externalBytes)} (${mib(report.after.arrayBuffersBytes)})`,
        `RSS after idle ${mib(report.afterIdle.rssBytes)}, after collection ${mib(report.after.rssBytes)}`,
        `report: ${out}`,
        '',
      ].join('\n'),
    );
    expect(report.result.errorSamples).toEqual([]);
    expect(report.result.errors).toBe(0);
    expect(report.after.fds).toBeLessThanOrEqual(report.baseline.fds + 2);
    // The live heap (garbage collected through the inspector) is back near its baseline: nothing
    // the ~15 000 pulls created is still reachable.
    expect(report.after.collected).toBe(true);
    expect(report.after.heapUsedBytes).toBeLessThan(report.baseline.heapUsedBytes + 32 * 1024 * 1024);
    // RSS is recorded rather than held to the baseline: V8 and the allocator keep pages the load
    // made them take (security.md). This bound only catches memory growing outside the heap.
    expect(report.after.rssBytes).toBeLessThan(report.baseline.rssBytes + 512 * 1024 * 1024);
    expect(report.exitCode).toBe(0);
  }, 600_000);
});
