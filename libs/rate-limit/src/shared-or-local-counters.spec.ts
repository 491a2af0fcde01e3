import { createCapturingLogger, ManualClock, MetricsService } from '@gatehouse/observability';
import { CounterFallbackReport, SharedOrLocalCounters } from './shared-or-local-counters';
import { SlidingWindowCounterStorage } from './sliding-window-counter.storage';

/** A shared store that can be switched off: the in-memory counter, or a rejection. */
class SwitchableShared extends SlidingWindowCounterStorage {
  down = false;
  calls = 0;
  override async hit(key: string, ttl: number, limit: number, name: string) {
    this.calls++;
    if (this.down) throw new Error('connection is closed');
    return super.hit(key, ttl, limit, name);
  }
}

describe('SharedOrLocalCounters', () => {
  const clock = new ManualClock(1_000_000);
  const now = () => clock.now();

  function setup() {
    const shared = new SwitchableShared(now);
    const local = new SlidingWindowCounterStorage(now);
    const log = createCapturingLogger();
    const metrics = new MetricsService();
    const counters = new SharedOrLocalCounters(
      shared,
      local,
      new CounterFallbackReport(metrics, log.logger, now),
      now,
    );
    return { shared, local, counters, log, metrics };
  }

  it('limits from local memory while the shared counters fail, asking them again once a second', async () => {
    const { shared, counters, log, metrics } = setup();
    shared.down = true;
    const answers = [];
    for (let i = 0; i < 5; i++) answers.push((await counters.hit('ip', 60_000, 3, 'token_ip')).isBlocked);
    expect(answers).toEqual([false, false, false, true, true]);
    expect(shared.calls).toBe(1);
    clock.advance(1_000);
    await counters.hit('ip', 60_000, 3, 'token_ip');
    expect(shared.calls).toBe(2);
    expect(counters.isLocal).toBe(true);
    expect(
      await metrics.registry.getSingleMetricAsString('gatehouse_rate_limit_local_fallback_total'),
    ).toMatch(/ 6$/m);
    expect(log.lines().filter((l) => /count per replica/.test(String(l.msg)))).toHaveLength(1);
    counters.onModuleDestroy();
  });

  it('logs the fallback once a minute while the shared counters stay away, with the checks since the last line', async () => {
    const { shared, counters, log } = setup();
    shared.down = true;
    const lines = () => log.lines().filter((l) => /count per replica/.test(String(l.msg)));
    await counters.hit('ip', 60_000, 3, 'token_ip');
    // Redis is asked again each second; every failure until a minute has passed is counted, not logged.
    for (let s = 1; s < 60; s++) {
      clock.advance(1_000);
      await counters.hit('ip', 60_000, 3, 'token_ip');
    }
    expect(lines()).toHaveLength(1);
    clock.advance(1_000);
    await counters.hit('ip', 60_000, 3, 'token_ip');
    expect(lines()).toHaveLength(2);
    expect(lines()[1]).toMatchObject({ checks: 60 });
    counters.onModuleDestroy();
  });

  it('goes back to the shared counters on the first success and forgets the local counts', async () => {
    const { shared, local, counters, log } = setup();
    shared.down = true;
    await counters.hit('ip', 60_000, 3, 'token_ip');
    expect(local.size).toBe(1);
    shared.down = false;
    clock.advance(1_000);
    expect((await counters.hit('ip', 60_000, 3, 'token_ip')).isBlocked).toBe(false);
    expect(counters.isLocal).toBe(false);
    expect(local.size).toBe(0);
    expect(log.lines().filter((l) => /reachable again/.test(String(l.msg)))).toHaveLength(1);
    counters.onModuleDestroy();
  });
});
