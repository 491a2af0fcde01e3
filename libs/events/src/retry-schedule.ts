/** First retry after about 5 s, doubling to at most an hour: ~30 attempts over a day. */
const BASE_MS = 5_000;
const MAX_MS = 3_600_000;

/**
 * When the next attempt after `attempts` failed ones may start: exponential backoff with full
 * jitter between half and the whole step, or the receiver's `Retry-After` when that is later
 * (capped at an hour). Null: the retry window is over and the delivery is dead-lettered.
 */
export function nextAttemptAt(input: {
  attempts: number;
  firstAt: number;
  now: number;
  retryForMs: number;
  retryAfterMs: number | null;
  random?: () => number;
}): number | null {
  const random = input.random ?? Math.random;
  const step = Math.min(MAX_MS, BASE_MS * 2 ** Math.max(0, input.attempts - 1));
  let delay = step / 2 + random() * (step / 2);
  if (input.retryAfterMs !== null) delay = Math.max(delay, Math.min(input.retryAfterMs, MAX_MS));
  const at = input.now + delay;
  const deadline = input.firstAt + input.retryForMs;
  if (input.now >= deadline) return null;
  // The last attempt is made at the deadline rather than skipped.
  return Math.min(at, deadline);
}
