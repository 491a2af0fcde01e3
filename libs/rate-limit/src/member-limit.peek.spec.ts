import type { RateLimitConfig } from '@gatehouse/config';
import { peekMemberLimit, rateLimitKey } from './member-limit.peek';
import { SlidingWindowCounterStorage } from './sliding-window-counter.storage';

const config = (v2PerMember: number) => ({ windowSeconds: 60, v2PerMember }) as RateLimitConfig;

describe('peekMemberLimit', () => {
  let now = 1_000_000;
  const storage = new SlidingWindowCounterStorage(() => now);
  afterAll(() => storage.onModuleDestroy());

  it("reads the guard's bucket without counting, and says when the next request is refused", async () => {
    const hit = () => storage.hit(rateLimitKey('v2_member', 'm-1'), 60_000, 3, 'v2_member');
    await hit();
    await hit();
    const under = await peekMemberLimit(storage, config(3), 'm-1');
    expect(under).toEqual({ limit: 3, windowSeconds: 60, used: 2, limited: false, retryAfterSeconds: 0 });
    await expect(peekMemberLimit(storage, config(3), 'm-1')).resolves.toEqual(under);
    await hit();
    const limited = await peekMemberLimit(storage, config(3), 'm-1');
    expect(limited).toMatchObject({ used: 3, limited: true });
    expect(limited!.retryAfterSeconds).toBeGreaterThan(0);
    now += 120_000;
    await expect(peekMemberLimit(storage, config(3), 'm-1')).resolves.toMatchObject({
      used: 0,
      limited: false,
    });
  });

  it('is null when the limit is off', async () => {
    await expect(peekMemberLimit(storage, config(0), 'm-1')).resolves.toBeNull();
  });
});
