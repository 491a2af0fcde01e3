import { GatewayConfig } from '@gatehouse/config';
import { AccessKey, AccessKeyService, CredentialCheck, Member } from '@gatehouse/members';
import { Clock } from '@gatehouse/observability';
import { MemberStateCache } from './member-state.cache';

class FakeClock extends Clock {
  ms = Date.UTC(2026, 0, 1);
  override now(): number {
    return this.ms;
  }
}

/** Stands in for the database: a member and a key whose fields the test flips. */
class FakeKeys {
  member = { id: 'm1', username: 'alice', status: 'active' } as Member;
  key = { id: 'k1', memberId: 'm1', revokedAt: null, expiresAt: null } as AccessKey;
  loads = 0;
  async checkById(): Promise<CredentialCheck> {
    this.loads++;
    return { ok: true, member: { ...this.member }, accessKey: { ...this.key } };
  }
}

function cache(keys: FakeKeys, clock: Clock, seconds = 5, outageGraceSeconds = 0): MemberStateCache {
  return new MemberStateCache(keys as unknown as AccessKeyService, clock, {
    auth: { stateCacheSeconds: seconds, outageGraceSeconds },
  } as GatewayConfig);
}

/** What pg throws when the server is gone. */
const refused = () =>
  Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });

describe('MemberStateCache', () => {
  it('answers the last state checked within the outage grace while the database is away, and no longer', async () => {
    const keys = new FakeKeys();
    const clock = new FakeClock();
    const c = cache(keys, clock, 5, 60);
    expect(await c.get('m1', 'k1')).toMatchObject({ ok: true });
    keys.checkById = () => Promise.reject(refused());
    clock.ms += 5_000 + 60_000;
    expect(await c.get('m1', 'k1')).toMatchObject({ ok: true });
    clock.ms += 1;
    await expect(c.get('m1', 'k1')).rejects.toThrow('ECONNREFUSED');
  });

  it('keeps a refusal through the outage grace too, and throws any other failure at once', async () => {
    const keys = new FakeKeys();
    const clock = new FakeClock();
    keys.member.status = 'disabled';
    const c = cache(keys, clock, 5, 60);
    await c.get('m1', 'k1');
    keys.checkById = () => Promise.reject(refused());
    clock.ms += 30_000;
    expect(await c.get('m1', 'k1')).toEqual({ ok: false, reason: 'member_disabled' });
    keys.checkById = () => Promise.reject(new Error('column "x" does not exist'));
    await expect(c.get('m1', 'k1')).rejects.toThrow('does not exist');
    const closed = cache(new FakeKeys(), clock, 5, 0);
    await closed.get('m1', 'k1');
    (closed as unknown as { keys: FakeKeys }).keys.checkById = () => Promise.reject(refused());
    clock.ms += 5_001;
    await expect(closed.get('m1', 'k1')).rejects.toThrow('ECONNREFUSED');
  });

  it('serves from memory within the TTL and sees changes after it', async () => {
    const keys = new FakeKeys();
    const clock = new FakeClock();
    const c = cache(keys, clock);
    expect(await c.get('m1', 'k1')).toMatchObject({ ok: true });
    keys.key.revokedAt = new Date(clock.ms);
    clock.ms += 4_999;
    expect(await c.get('m1', 'k1')).toMatchObject({ ok: true });
    expect(keys.loads).toBe(1);
    clock.ms += 1;
    expect(await c.get('m1', 'k1')).toEqual({ ok: false, reason: 'key_revoked' });
    expect(keys.loads).toBe(2);
  });

  it('reports a disabled member', async () => {
    const keys = new FakeKeys();
    keys.member.status = 'disabled';
    expect(await cache(keys, new FakeClock()).get('m1', 'k1')).toEqual({
      ok: false,
      reason: 'member_disabled',
    });
  });

  it('checks key expiry on every call, not only on load', async () => {
    const keys = new FakeKeys();
    const clock = new FakeClock();
    keys.key.expiresAt = new Date(clock.ms + 1_000);
    const c = cache(keys, clock);
    expect(await c.get('m1', 'k1')).toMatchObject({ ok: true });
    clock.ms += 1_000;
    expect(await c.get('m1', 'k1')).toEqual({ ok: false, reason: 'key_expired' });
    expect(keys.loads).toBe(1);
  });

  it('shares one load between concurrent requests, and does not cache with a TTL of 0', async () => {
    const keys = new FakeKeys();
    const c = cache(keys, new FakeClock());
    await Promise.all([c.get('m1', 'k1'), c.get('m1', 'k1'), c.get('m1', 'k1')]);
    expect(keys.loads).toBe(1);
    const uncached = cache(keys, new FakeClock(), 0);
    await uncached.get('m1', 'k1');
    await uncached.get('m1', 'k1');
    expect(keys.loads).toBe(3);
  });

  it('treats a key that no longer exists as bad credentials', async () => {
    const keys = new FakeKeys();
    keys.checkById = async () => ({ ok: false, reason: 'bad_credentials', member: null, accessKey: null });
    expect(await cache(keys, new FakeClock()).get('m1', 'k1')).toEqual({
      ok: false,
      reason: 'bad_credentials',
    });
  });

  it('forgets one member on a change announcement, keeping the others', async () => {
    const keys = new FakeKeys();
    const c = cache(keys, new FakeClock());
    await c.get('m1', 'k1');
    await c.get('m2', 'k2');
    c.forgetMember('m1');
    await c.get('m1', 'k1');
    await c.get('m2', 'k2');
    expect(keys.loads).toBe(3);
  });

  it('keeps entries at most the short time while the listener is down, then the configured TTL', async () => {
    const keys = new FakeKeys();
    const clock = new FakeClock();
    const c = cache(keys, clock, 10);
    c.shortenCache(1_000);
    await c.get('m1', 'k1');
    clock.ms += 1_000;
    await c.get('m1', 'k1');
    expect(keys.loads).toBe(2);
    c.shortenCache(null);
    clock.ms += 9_999;
    await c.get('m1', 'k1');
    expect(keys.loads).toBe(2);
  });
});
