import { createCapturingLogger, ManualClock } from '@gatehouse/observability';
import { AuditOutageDetector } from './audit-outage.detector';

describe('AuditOutageDetector', () => {
  function detector() {
    const clock = new ManualClock();
    const log = createCapturingLogger();
    const outage = new AuditOutageDetector(clock, log.logger, {
      retryMinMs: 200,
      retryMaxMs: 1_000,
      spoolDir: 'spool',
    });
    return { clock, log, outage };
  }

  it('probes at once while the database is up', () => {
    const { outage } = detector();
    expect(outage.inOutage).toBe(false);
    expect(outage.mayProbe).toBe(true);
    expect(outage.msUntilProbe).toBe(0);
  });

  it('backs off doubling between the bounds, measured on the clock', () => {
    const { clock, outage } = detector();
    const delays: number[] = [];
    for (let i = 0; i < 5; i++) {
      outage.failed(3);
      delays.push(outage.backoffMs);
    }
    expect(delays).toEqual([200, 400, 800, 1_000, 1_000]);
    expect(outage.inOutage).toBe(true);
    expect(outage.mayProbe).toBe(false);
    expect(outage.msUntilProbe).toBe(1_000);
    clock.advance(999);
    expect(outage.mayProbe).toBe(false);
    clock.advance(1);
    expect(outage.mayProbe).toBe(true);
  });

  it('an explicit flush probes without waiting out the backoff', () => {
    const { outage } = detector();
    outage.failed(1);
    expect(outage.mayProbe).toBe(false);
    outage.probeNow();
    expect(outage.mayProbe).toBe(true);
  });

  it('warns once per outage and logs the recovery once', () => {
    const { log, outage } = detector();
    outage.failed(1);
    outage.failed(2);
    outage.recovered(0);
    outage.recovered(0);
    const messages = log.lines().map((l) => String(l.msg));
    expect(messages.filter((m) => /could not be stored/.test(m))).toHaveLength(1);
    expect(messages.filter((m) => /recovered/.test(m))).toHaveLength(1);
    expect(outage.inOutage).toBe(false);
    expect(outage.backoffMs).toBe(0);
  });
});
