import { SlidingWindowCounterStorage } from './sliding-window-counter.storage';

describe('SlidingWindowCounterStorage', () => {
  let now: number;
  let storage: SlidingWindowCounterStorage;
  const ttl = 60_000;
  const hit = (key = 'm1', limit = 5) => storage.increment(key, ttl, limit, 0, 'v2_member');

  beforeEach(() => {
    now = 6_000_000; // a window boundary
    storage = new SlidingWindowCounterStorage(() => now);
  });
  afterEach(() => storage.onModuleDestroy());

  it('admits the limit within a window and refuses the next request with a wait', async () => {
    for (let i = 1; i <= 5; i++) expect(await hit()).toMatchObject({ isBlocked: false, totalHits: i });
    const refused = await hit();
    expect(refused.isBlocked).toBe(true);
    // Retry-After is at most one window.
    expect(refused.timeToBlockExpire).toBe(60);
    // The 5 hits still weigh 5 at the next boundary; 12 s later they weigh 4, leaving room for one.
    now += 71_000;
    const again = await hit();
    expect(again.isBlocked).toBe(true);
    expect(again.timeToBlockExpire).toBe(1);
    now += 1_000;
    expect((await hit()).isBlocked).toBe(false);
  });

  it('keeps keys and limits apart', async () => {
    for (let i = 0; i < 5; i++) await hit('a');
    expect((await hit('a')).isBlocked).toBe(true);
    expect((await hit('b')).isBlocked).toBe(false);
    expect((await storage.increment('a', ttl, 5, 0, 'token_ip')).isBlocked).toBe(false);
  });

  it('slides: the previous window counts in proportion to its overlap', async () => {
    for (let i = 0; i < 5; i++) await hit();
    now += ttl + ttl / 2; // halfway into the next window: 5 × 0.5 = 2.5 still count
    expect((await hit()).isBlocked).toBe(false); // 3.5
    expect((await hit()).isBlocked).toBe(false); // 4.5
    const refused = await hit(); // 5.5 > 5
    expect(refused.isBlocked).toBe(true);
    // 2 hits in this window + 5 × (1 - x) ≤ 4 needs x ≥ 0.6 of the window: 6 s from now.
    expect(refused.timeToBlockExpire).toBe(6);
    now += 6_000;
    expect((await hit()).isBlocked).toBe(false);
  });

  it('does not count refused requests, so hammering does not prolong the wait', async () => {
    for (let i = 0; i < 5; i++) await hit();
    for (let i = 0; i < 1000; i++) expect((await hit()).isBlocked).toBe(true);
    now += 2 * ttl;
    expect((await hit()).isBlocked).toBe(false);
  });

  it('costs the same whatever the limit (no per-hit state) and forgets idle keys', async () => {
    for (let i = 0; i < 100_000; i++) await storage.increment('busy', ttl, 1_000_000, 0, 'v2_member');
    expect(storage.size).toBe(1);
    now += 2 * ttl;
    storage.sweep();
    expect(storage.size).toBe(0);
  });

  it('peek answers like hit without counting; reset forgets a key', () => {
    for (let i = 0; i < 4; i++) storage.hitNow('p', ttl, 5, 'login');
    expect(storage.peekNow('p', ttl, 5, 'login')).toMatchObject({ isBlocked: false, totalHits: 5 });
    expect(storage.peekNow('p', ttl, 5, 'login')).toMatchObject({ isBlocked: false, totalHits: 5 });
    storage.hitNow('p', ttl, 5, 'login');
    expect(storage.peekNow('p', ttl, 5, 'login').isBlocked).toBe(true);
    expect(storage.peekNow('never-seen', ttl, 5, 'login').isBlocked).toBe(false);
    expect(storage.size).toBe(1);
    storage.resetNow('p', 'login');
    expect(storage.peekNow('p', ttl, 5, 'login').isBlocked).toBe(false);
    expect(storage.size).toBe(0);
  });

  it('holds at most maxKeys keys, dropping the oldest', () => {
    const small = new SlidingWindowCounterStorage(() => now, 60_000, 3);
    for (const k of ['a', 'b', 'c', 'd']) small.hitNow(k, ttl, 1, 'login');
    expect(small.size).toBe(3);
    expect(small.peekNow('a', ttl, 1, 'login').isBlocked).toBe(false);
    expect(small.peekNow('d', ttl, 1, 'login').isBlocked).toBe(true);
    small.onModuleDestroy();
  });
});
