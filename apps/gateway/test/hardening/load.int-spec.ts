import { runLoadScenario } from '../../../../bench/load/load-scenario';

/**
 * The short version of `just load` (200 clients, 60 s, recorded in dev-docs/security.md): enough
 * concurrency to show a leak of descriptors or an error under load, quick enough for every run.
 */
describe('load (short)', () => {
  it('serves 50 concurrent clients pulling the multi-arch image for 5 s without an error, and returns to its baseline', async () => {
    const report = await runLoadScenario(50, 5000);
    process.stdout.write(`short load: ${JSON.stringify(report)}\n`);
    expect(report.result.errorSamples).toEqual([]);
    expect(report.result.errors).toBe(0);
    expect(report.result.pulls).toBeGreaterThan(50);
    // Every client connection is gone again: no descriptor leaked.
    expect(report.after.fds).toBeLessThanOrEqual(report.baseline.fds + 2);
    // Live heap (garbage collected through the inspector) back near its baseline: about 600
    // pulls of objects the load created must not still be reachable. RSS is recorded, not
    // bounded here: V8 and the allocator keep the pages the load made them take.
    expect(report.after.collected).toBe(true);
    expect(report.after.heapUsedBytes).toBeLessThan(report.baseline.heapUsedBytes + 32 * 1024 * 1024);
    expect(report.exitCode).toBe(0);
  });
});
