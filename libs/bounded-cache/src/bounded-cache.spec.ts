import { BoundedCache, SingleFlight } from './bounded-cache';

class Clock {
  t = 1_000_000;
  now = () => this.t;
}

function deferred<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}

describe('SingleFlight', () => {
  it('shares running work per key and forgets it once settled', async () => {
    const flight = new SingleFlight<string, number>();
    const d = deferred<number>();
    let calls = 0;
    const work = () => (calls++, d.promise);
    const a = flight.run('k', work);
    const b = flight.run('k', work);
    const other = flight.run('j', () => Promise.resolve(7));
    expect([a.joined, b.joined, other.joined]).toEqual([false, true, false]);
    d.resolve(1);
    expect(await Promise.all([a.result, b.result, other.result])).toEqual([1, 1, 7]);
    expect(calls).toBe(1);
    expect(flight.size).toBe(0);
    const failed = flight.run('k', () => Promise.reject(new Error('x')));
    expect(failed.joined).toBe(false);
    await expect(failed.result).rejects.toThrow('x');
    expect(flight.size).toBe(0);
  });
});

describe('BoundedCache', () => {
  let clock: Clock;
  let cache: BoundedCache<string, string | null>;
  beforeEach(() => {
    clock = new Clock();
    cache = new BoundedCache({ max: 3, ttlMs: 1000, staleIfErrorMs: 5000, now: clock.now });
  });

  it('answers a fresh value from memory and loads again after the TTL', async () => {
    let loads = 0;
    const load = async () => `v${++loads}`;
    expect(await cache.fetch('a', load)).toEqual({ value: 'v1', stale: null });
    clock.t += 999;
    expect(await cache.fetch('a', load)).toEqual({ value: 'v1', stale: null });
    clock.t += 1;
    expect(await cache.fetch('a', load)).toEqual({ value: 'v2', stale: null });
    expect(cache.get('a')).toBe('v2');
  });

  it('runs one load per key for concurrent callers', async () => {
    const d = deferred<string>();
    let loads = 0;
    const load = () => (loads++, d.promise);
    const answers = Promise.all([cache.fetch('a', load), cache.fetch('a', load), cache.fetch('a', load)]);
    d.resolve('x');
    expect((await answers).map((a) => a.value)).toEqual(['x', 'x', 'x']);
    expect(loads).toBe(1);
  });

  it('hands the stored entry to the load, to revalidate it', async () => {
    await cache.fetch('a', async () => 'old');
    clock.t += 2000;
    const seen: unknown[] = [];
    await cache.fetch('a', async (previous) => (seen.push(previous), 'new'));
    expect(seen).toEqual([{ value: 'old', at: 1_000_000 }]);
  });

  it('serves the last value marked stale while loads fail, up to TTL + stale bound, then throws', async () => {
    await cache.fetch('a', async () => 'known');
    const down = async (): Promise<string> => {
      throw new Error('upstream down');
    };
    clock.t += 6000;
    expect(await cache.fetch('a', down)).toEqual({
      value: 'known',
      stale: { ageMs: 6000, cause: new Error('upstream down') },
    });
    clock.t += 1;
    await expect(cache.fetch('a', down)).rejects.toThrow('upstream down');
    await expect(cache.fetch('never', down)).rejects.toThrow('upstream down');
  });

  it('answers stale only for the failures staleOn accepts', async () => {
    const strict = new BoundedCache<string, string>({
      max: 3,
      ttlMs: 1000,
      staleIfErrorMs: 5000,
      staleOn: (e) => (e as Error).message === 'transient',
      now: clock.now,
    });
    await strict.fetch('a', async () => 'known');
    clock.t += 1500;
    expect((await strict.fetch('a', () => Promise.reject(new Error('transient')))).stale).not.toBeNull();
    await expect(strict.fetch('a', () => Promise.reject(new Error('a bug')))).rejects.toThrow('a bug');
  });

  it('never serves stale without a stale bound', async () => {
    const plain = new BoundedCache<string, string>({ max: 3, ttlMs: 1000, now: clock.now });
    await plain.fetch('a', async () => 'known');
    clock.t += 1001;
    await expect(plain.fetch('a', () => Promise.reject(new Error('down')))).rejects.toThrow('down');
  });

  it('stores null values, and forgets a key whose loaded value keep refuses', async () => {
    expect(await cache.fetch('gone', async () => null)).toEqual({ value: null, stale: null });
    expect(cache.peek('gone')).toEqual({ value: null, at: clock.t });
    await cache.fetch('a', async () => 'x');
    clock.t += 2000;
    await cache.fetch('a', async () => null, { keep: (v) => v !== null });
    expect(cache.peek('a')).toBeUndefined();
  });

  it('evicts the least recently used entry, not the oldest inserted', async () => {
    for (const k of ['a', 'b', 'c']) cache.set(k, k);
    expect(cache.get('a')).toBe('a');
    cache.set('d', 'd');
    expect(cache.keys().sort()).toEqual(['a', 'c', 'd']);
  });

  it('follows a lowered TTL at once, and purges what it made expired', () => {
    cache.set('a', 'a');
    clock.t += 500;
    cache.ttlMs = 400;
    expect(cache.get('a')).toBeUndefined();
    cache.purgeExpired();
    expect(cache.size).toBe(0);
  });

  it('starts a fresh load after delete, and does not store what a load begun before it found', async () => {
    const before = deferred<string>();
    const first = cache.fetch('m', () => before.promise);
    cache.delete('m');
    const second = cache.fetch('m', async () => 'after the change');
    before.resolve('before the change');
    expect((await first).value).toBe('before the change');
    expect((await second).value).toBe('after the change');
    expect(cache.get('m')).toBe('after the change');
    const late = deferred<string>();
    const third = cache.fetch('n', () => late.promise);
    cache.clear();
    late.resolve('outdated');
    await third;
    expect(cache.peek('n')).toBeUndefined();
  });
});
