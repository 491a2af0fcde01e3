import { AppLogger, ManualClock } from '@gatehouse/observability';
import { HEARTBEAT_TIMING, ReplicaHeartbeat, ReplicaRow, ReplicaStore } from './replica-heartbeat';

/** gateway_replicas in memory; `down` makes every call fail as a database outage would. */
class FakeReplicaStore implements ReplicaStore {
  rows = new Map<string, ReplicaRow>();
  down = false;
  calls = 0;

  async beat(row: ReplicaRow): Promise<void> {
    this.check();
    const had = this.rows.get(row.id);
    this.rows.set(row.id, had ? { ...had, lastSeenAt: row.lastSeenAt } : { ...row });
  }
  async prune(before: Date): Promise<number> {
    this.check();
    let n = 0;
    for (const [id, r] of this.rows) if (r.lastSeenAt < before && this.rows.delete(id)) n++;
    return n;
  }
  async list(): Promise<ReplicaRow[]> {
    this.check();
    return [...this.rows.values()];
  }
  private check(): void {
    this.calls++;
    if (this.down) throw new Error('connect ECONNREFUSED 127.0.0.1:5432');
  }
}

/** A timer driven by hand: `tick()` is one interval passing. */
class FakeTimer {
  fn: (() => void) | null = null;
  ms = 0;
  readonly timer = (ms: number, fn: () => void) => {
    this.ms = ms;
    this.fn = fn;
    return () => {
      this.fn = null;
    };
  };
}

const logger = () => {
  const lines: Array<{ level: string; msg?: string }> = [];
  const l = {
    info: (_: object, msg?: string) => lines.push({ level: 'info', msg }),
    warn: (_: object, msg?: string) => lines.push({ level: 'warn', msg }),
  } as unknown as AppLogger;
  return { l, lines };
};

describe('ReplicaHeartbeat', () => {
  const SECOND = 1000;
  let clock: ManualClock;
  let store: FakeReplicaStore;
  let timer: FakeTimer;
  let log: ReturnType<typeof logger>;

  const replica = (host: string) =>
    new ReplicaHeartbeat(
      store,
      clock,
      log.l,
      { listenAddress: `${host}:8080`, hostname: host, pid: 7, version: '1.2.3' },
      HEARTBEAT_TIMING,
      timer.timer,
    );

  /** One interval: the clock moves 15 s and the timer fires; waits for the beat. */
  async function tick(hb: ReplicaHeartbeat): Promise<void> {
    clock.advance(HEARTBEAT_TIMING.intervalMs);
    timer.fn?.();
    await hb.beat();
  }

  beforeEach(() => {
    clock = new ManualClock(Date.UTC(2026, 11, 7, 12));
    store = new FakeReplicaStore();
    timer = new FakeTimer();
    log = logger();
  });

  it('writes its row at start and moves last_seen_at on every 15 s', async () => {
    const hb = replica('gw-a');
    await hb.start();
    expect(timer.ms).toBe(15 * SECOND);
    const row = store.rows.get(hb.self.id)!;
    expect(row).toMatchObject({ hostname: 'gw-a', pid: 7, version: '1.2.3', listenAddress: 'gw-a:8080' });
    expect(row.startedAt).toEqual(clock.date());
    expect(hb.self.id).toMatch(/^gw-a:7:[0-9a-f]{8}$/);
    await tick(hb);
    await tick(hb);
    expect(store.rows.get(hb.self.id)!.lastSeenAt).toEqual(clock.date());
    expect(store.rows.get(hb.self.id)!.startedAt.getTime()).toBe(clock.now() - 30 * SECOND);
  });

  it('two replicas in one process get two rows', async () => {
    const a = replica('same');
    const b = replica('same');
    await a.start();
    await b.start();
    expect(a.self.id).not.toBe(b.self.id);
    expect(store.rows.size).toBe(2);
  });

  it('lists replicas seen in the last minute apart from those gone quiet, and prunes a day-old row', async () => {
    const a = replica('gw-a');
    const b = replica('gw-b');
    await a.start();
    await b.start();
    expect((await a.seen()).recent.map((r) => [r.hostname, r.self])).toEqual(
      expect.arrayContaining([
        ['gw-a', true],
        ['gw-b', false],
      ]),
    );
    await b.stop();
    expect(timer.fn).toBeNull();
    // b stops beating; a keeps on. At 60 s b is still recent, past it b is quiet.
    timer.fn = () => void a.beat();
    for (let i = 0; i < 4; i++) await tick(a);
    expect((await a.seen()).quiet).toEqual([]);
    clock.advance(1);
    const seen = await a.seen();
    expect(seen.recent.map((r) => [r.hostname, r.self])).toEqual([['gw-a', true]]);
    expect(seen.quiet.map((r) => [r.hostname, r.self])).toEqual([['gw-b', false]]);
    // Kept for a day, then the next beat prunes it.
    clock.advance(HEARTBEAT_TIMING.keepMs - 61 * SECOND);
    await a.beat();
    expect(store.rows.has(b.self.id)).toBe(true);
    clock.advance(2 * SECOND);
    await a.beat();
    expect(store.rows.has(b.self.id)).toBe(false);
    expect((await a.seen()).quiet).toEqual([]);
  });

  it('survives a database outage: no throw, one warning, beats again once it is back', async () => {
    const hb = replica('gw-a');
    await hb.start();
    store.down = true;
    const before = store.calls;
    await tick(hb);
    await tick(hb);
    await tick(hb);
    expect(store.calls).toBe(before + 3);
    expect(log.lines.filter((l) => l.level === 'warn')).toHaveLength(1);
    store.down = false;
    await tick(hb);
    expect(store.rows.get(hb.self.id)!.lastSeenAt).toEqual(clock.date());
    expect(log.lines.at(-1)).toEqual({ level: 'info', msg: 'replica heartbeat written again' });
  });

  it('stops on shutdown: the timer is cleared and a beat in flight is awaited', async () => {
    const hb = replica('gw-a');
    await hb.onApplicationBootstrap();
    let release!: () => void;
    const slow = new Promise<void>((r) => (release = r));
    const beat = store.beat.bind(store);
    store.beat = async (row) => {
      await slow;
      return beat(row);
    };
    clock.advance(HEARTBEAT_TIMING.intervalMs);
    timer.fn!();
    let stopped = false;
    const stopping = hb.beforeApplicationShutdown().then(() => (stopped = true));
    await Promise.resolve();
    expect(timer.fn).toBeNull();
    expect(stopped).toBe(false);
    release();
    await stopping;
    expect(store.rows.get(hb.self.id)!.lastSeenAt).toEqual(clock.date());
  });
});
