import Redis from 'ioredis';
import { createTestGateway, TestGateway } from '@gatehouse/testing/gateway';
import { startTestRedis, TestRedis } from '@gatehouse/testing/redis';

/**
 * A real redis-server stopped mid-run under the real gateway: the limits keep limiting, per
 * replica, and go back to the shared counters when Redis returns.
 */
describe('rate limits while Redis is away', () => {
  let redis: TestRedis;
  let gw: TestGateway;
  let client: Redis;
  const LIMIT = 6;

  beforeAll(async () => {
    redis = await startTestRedis();
    client = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    client.on('error', () => undefined);
    gw = await createTestGateway({
      env: {
        REDIS_URL: redis.url,
        RATE_LIMIT_TOKEN_PER_IP: String(LIMIT),
        RATE_LIMIT_WINDOW_SECONDS: '600',
      },
    });
  });

  afterAll(async () => {
    client?.disconnect();
    await gw?.close();
    await redis?.stop();
  });

  const anonymous = async () => {
    const res = await fetch(`${gw.url}/auth/token?service=${gw.host}`, {
      headers: { authorization: 'Basic bm9ib2R5Ong=' },
    });
    await res.arrayBuffer();
    return res.status;
  };
  const metrics = async () => (await fetch(`${gw.url}/metrics`)).text();
  const sharedKeys = async () => {
    if (client.status !== 'ready') await client.connect().catch(() => undefined);
    return client.keys('gatehouse:rl:token_ip:*');
  };

  it('counts per replica (never unlimited) while Redis is down, says so once, and shares again when it is back', async () => {
    expect(await anonymous()).toBe(401);
    expect(await sharedKeys()).toHaveLength(1);

    await redis.kill();
    client.disconnect();
    const during: number[] = [];
    for (let i = 0; i < LIMIT + 4; i++) during.push(await anonymous());
    // This replica's own window starts empty: LIMIT answers, then 429 (before: 401 every time).
    expect(during.filter((s) => s === 401)).toHaveLength(LIMIT);
    expect(during.slice(LIMIT).every((s) => s === 429)).toBe(true);
    const away = await metrics();
    expect(away).toMatch(/^gatehouse_rate_limit_counters_shared 0$/m);
    expect(
      Number(/^gatehouse_rate_limit_local_fallback_total (\d+)$/m.exec(away)?.[1]),
    ).toBeGreaterThanOrEqual(LIMIT + 4);
    const awayLines = gw.logs.filter((l) => /count per replica/.test(String(l.msg)));
    expect(awayLines).toHaveLength(1);

    await redis.start();
    // The client reconnects in the background; a check at most a second later asks Redis again.
    const deadline = Date.now() + 15_000;
    while (!/^gatehouse_rate_limit_counters_shared 1$/m.test(await metrics())) {
      if (Date.now() > deadline) throw new Error('the gateway did not return to the shared counters in 15 s');
      await anonymous();
      await new Promise((r) => setTimeout(r, 250));
    }
    // Redis restarted empty (in memory only): the shared window starts again and counts there.
    expect(await sharedKeys()).toHaveLength(1);
    expect(gw.logs.filter((l) => /reachable again/.test(String(l.msg)))).toHaveLength(1);
    expect(gw.logs.filter((l) => /fail open/.test(String(l.msg)))).toHaveLength(0);
  });
});
