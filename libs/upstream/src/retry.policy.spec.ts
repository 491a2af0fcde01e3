import { errorCode, RetryPolicy } from './retry.policy';

function err(code: string): Error {
  return Object.assign(new Error(code), { code });
}

describe('RetryPolicy', () => {
  const policy = new RetryPolicy({ retries: 2, baseDelayMs: 100, maxDelayMs: 1000, random: () => 0.5 });

  it.each([
    ['ECONNREFUSED', true],
    ['ECONNRESET', true],
    ['UND_ERR_SOCKET', true],
    ['UND_ERR_CONNECT_TIMEOUT', true],
    ['EAI_AGAIN', true],
    ['UND_ERR_HEADERS_TIMEOUT', false],
    ['UND_ERR_BODY_TIMEOUT', false],
    ['ENOTFOUND', false],
    ['DEPTH_ZERO_SELF_SIGNED_CERT', false],
  ])('retries %s on GET: %s', (code, expected) => {
    expect(policy.shouldRetryError('GET', err(code), 0)).toBe(expected);
  });

  it('finds the code in the cause chain', () => {
    const wrapped = new Error('fetch failed', { cause: err('ECONNRESET') });
    expect(errorCode(wrapped)).toBe('ECONNRESET');
    expect(policy.shouldRetryError('HEAD', wrapped, 1)).toBe(true);
  });

  it.each([
    [500, true],
    [502, true],
    [503, true],
    [504, true],
    [501, false],
    [505, false],
    [404, false],
    [401, false],
    [429, false],
  ])('retries status %d: %s', (status, expected) => {
    expect(policy.shouldRetryStatus('GET', status, 0)).toBe(expected);
  });

  it('never retries non-idempotent methods', () => {
    expect(policy.shouldRetryStatus('POST', 503, 0)).toBe(false);
    expect(policy.shouldRetryError('PUT', err('ECONNRESET'), 0)).toBe(false);
  });

  it('stops after the configured number of retries', () => {
    expect(policy.shouldRetryStatus('GET', 503, 1)).toBe(true);
    expect(policy.shouldRetryStatus('GET', 503, 2)).toBe(false);
    expect(new RetryPolicy({ retries: 0 }).shouldRetryError('GET', err('ECONNRESET'), 0)).toBe(false);
  });

  it('backs off exponentially with jitter inside [ceiling/2, ceiling], capped', () => {
    const low = new RetryPolicy({ retries: 5, baseDelayMs: 100, maxDelayMs: 1000, random: () => 0 });
    const high = new RetryPolicy({ retries: 5, baseDelayMs: 100, maxDelayMs: 1000, random: () => 1 });
    expect([0, 1, 2, 3, 4].map((n) => low.delayMs(n))).toEqual([50, 100, 200, 400, 500]);
    expect([0, 1, 2, 3, 4].map((n) => high.delayMs(n))).toEqual([100, 200, 400, 800, 1000]);
    expect(policy.delayMs(0)).toBe(75);
  });
});
