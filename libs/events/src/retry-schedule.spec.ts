import { nextAttemptAt } from './retry-schedule';

const HOUR = 3_600_000;
const base = { firstAt: 0, retryForMs: 24 * HOUR, retryAfterMs: null };

describe('nextAttemptAt', () => {
  it('backs off exponentially with jitter between half and the whole step, capped at an hour', () => {
    expect(nextAttemptAt({ ...base, attempts: 1, now: 0, random: () => 0 })).toBe(2_500);
    expect(nextAttemptAt({ ...base, attempts: 1, now: 0, random: () => 1 })).toBe(5_000);
    expect(nextAttemptAt({ ...base, attempts: 4, now: 0, random: () => 1 })).toBe(40_000);
    expect(nextAttemptAt({ ...base, attempts: 30, now: 0, random: () => 1 })).toBe(HOUR);
  });

  it('keeps retrying for the whole window (at least a day), the last attempt at its end', () => {
    let now = 0;
    let attempts = 0;
    for (;;) {
      attempts++;
      const next = nextAttemptAt({ ...base, attempts, now, random: () => 0.5 });
      if (next === null) break;
      now = next;
    }
    expect(now).toBe(24 * HOUR);
    expect(attempts).toBeGreaterThan(20);
  });

  it('honours a later Retry-After, up to an hour', () => {
    expect(nextAttemptAt({ ...base, attempts: 1, now: 0, retryAfterMs: 120_000, random: () => 0 })).toBe(
      120_000,
    );
    expect(nextAttemptAt({ ...base, attempts: 1, now: 0, retryAfterMs: 10 * HOUR, random: () => 0 })).toBe(
      HOUR,
    );
    expect(nextAttemptAt({ ...base, attempts: 1, now: 0, retryAfterMs: 1, random: () => 0 })).toBe(2_500);
  });
});
