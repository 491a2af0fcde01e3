import { LRUCache } from 'lru-cache';

/**
 * Concurrent identical questions share one piece of work: the first caller starts it, the others
 * join it until it settles. Holds only running work (bounded by the callers waiting on it).
 */
export class SingleFlight<K, T> {
  private readonly running = new Map<K, Promise<T>>();

  /** The running work for `key`, or `work()` started now; `joined` tells which. */
  run(key: K, work: () => Promise<T>): { result: Promise<T>; joined: boolean } {
    const running = this.running.get(key);
    if (running) return { result: running, joined: true };
    const result = work().finally(() => {
      if (this.running.get(key) === result) this.running.delete(key);
    });
    this.running.set(key, result);
    return { result, joined: false };
  }

  /** New callers start fresh work; those already waiting keep theirs. */
  forget(key: K): void {
    this.running.delete(key);
  }

  clear(): void {
    this.running.clear();
  }

  get size(): number {
    return this.running.size;
  }
}

export interface BoundedCacheOptions {
  /** Entries kept; the least recently used goes first. */
  max: number;
  /** How long a stored value is fresh (ms). Mutable through `ttlMs`. */
  ttlMs: number;
  /** How long past `ttlMs` a value is still served when a refresh fails (stale-if-error); 0: never. */
  staleIfErrorMs?: number;
  /** Which refresh failures may be answered stale (any by default). */
  staleOn?: (error: unknown) => boolean;
  /** The clock (an injectable edge: `Clock.now`). */
  now: () => number;
}

/** A stored value and when it was stored (checked) upstream. */
export interface CacheEntry<V> {
  value: V;
  at: number;
}

/** What `fetch` answers: the value, and how old it is when it was served stale after a failure. */
export interface CacheAnswer<V> {
  value: V;
  stale: { ageMs: number; cause: unknown } | null;
}

export interface FetchOptions<V> {
  /** Whether a loaded value is stored (else the key is forgotten); all are by default. */
  keep?: (value: V) => boolean;
}

/**
 * The one bounded in-memory cache with TTL, single-flight and stale-if-error, over lru-cache:
 * `fetch(key, load)` answers a fresh value from memory; otherwise the one running `load` of that
 * key (started or joined) stores and answers its value; when `load` fails, a value no older than
 * `ttlMs + staleIfErrorMs` is answered marked stale, and the failure is thrown otherwise. Ages
 * are measured on the injected clock, so TTL rules are tested without sleeping.
 */
export class BoundedCache<K extends NonNullable<unknown>, V> {
  private readonly entries: LRUCache<K, CacheEntry<V>>;
  private readonly flights = new SingleFlight<K, CacheAnswer<V>>();
  /** Bumped by delete and clear: a load that began before does not store its (maybe outdated) value. */
  private epoch = 0;
  ttlMs: number;

  constructor(private readonly options: BoundedCacheOptions) {
    this.entries = new LRUCache<K, CacheEntry<V>>({ max: options.max });
    this.ttlMs = options.ttlMs;
  }

  get size(): number {
    return this.entries.size;
  }

  /** A fresh value, or undefined (an expired entry is kept for stale answers). */
  get(key: K): V | undefined {
    const entry = this.entries.get(key);
    return entry && this.isFresh(entry) ? entry.value : undefined;
  }

  /** The stored entry whatever its age, without touching its recency. */
  peek(key: K): CacheEntry<V> | undefined {
    return this.entries.peek(key);
  }

  set(key: K, value: V, at = this.options.now()): void {
    this.entries.set(key, { value, at });
  }

  /** Forgets the key; a load running now is neither joined nor stored any more. */
  delete(key: K): void {
    this.entries.delete(key);
    this.flights.forget(key);
    this.epoch++;
  }

  clear(): void {
    this.entries.clear();
    this.flights.clear();
    this.epoch++;
  }

  /** Keys, most recently used first. */
  keys(): K[] {
    return [...this.entries.keys()];
  }

  /** Drops every entry past its TTL (a lowered TTL, a periodic sweep). */
  purgeExpired(): void {
    for (const [key, entry] of this.entries.entries()) if (!this.isFresh(entry)) this.entries.delete(key);
  }

  isFresh(entry: CacheEntry<V>): boolean {
    return this.options.now() - entry.at < this.ttlMs;
  }

  /**
   * A fresh value; else the one `load` of the key, given the stored entry (to revalidate it);
   * else, when that fails, the stored value within the stale bound, marked stale.
   */
  fetch(
    key: K,
    load: (previous: CacheEntry<V> | undefined) => Promise<V>,
    options: FetchOptions<V> = {},
  ): Promise<CacheAnswer<V>> {
    const hit = this.entries.get(key);
    if (hit && this.isFresh(hit)) return Promise.resolve({ value: hit.value, stale: null });
    return this.flights.run(key, async () => {
      const previous = this.entries.peek(key);
      const askedAt = this.options.now();
      const epoch = this.epoch;
      try {
        const value = await load(previous);
        if (epoch !== this.epoch) return { value, stale: null };
        if (options.keep && !options.keep(value)) this.entries.delete(key);
        // As old as the question: a TTL bound (a revocation's) holds from when the load began.
        else this.set(key, value, askedAt);
        return { value, stale: null };
      } catch (cause) {
        const stale = previous && this.staleAnswer(previous, askedAt, cause);
        if (stale) return stale;
        throw cause;
      }
    }).result;
  }

  private staleAnswer(entry: CacheEntry<V>, askedAt: number, cause: unknown): CacheAnswer<V> | null {
    const ageMs = askedAt - entry.at;
    const bound = this.ttlMs + (this.options.staleIfErrorMs ?? 0);
    if (ageMs > bound || (this.options.staleOn && !this.options.staleOn(cause))) return null;
    return { value: entry.value, stale: { ageMs, cause } };
  }
}
