import { UpstreamHealth } from './upstream-health.service';
import { closeFakes, forgejoLike, setup } from './testing/upstream-fakes';

// The client through its facade, against local HTTP fakes (testing/upstream-fakes.ts).

afterEach(closeFakes);

describe('UpstreamHealth', () => {
  it('caches the access check for its TTL', async () => {
    const up = await forgejoLike({ jwtExp: () => Date.now() / 1000 + 3600 });
    const { client, log, clock } = setup(up.f.url);
    const health = new UpstreamHealth(client, log.logger, clock, { ttlMs: 30_000 });
    expect(await health.check()).toMatchObject({ ok: true });
    await health.check();
    expect(up.minted()).toBe(1);
    clock.t += 31_000;
    await health.check();
    expect(up.minted()).toBe(2);
    await client.close();
  });
});
