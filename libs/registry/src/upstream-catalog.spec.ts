import { Clock } from '@gatehouse/observability';
import { GatehouseUpstreamCatalog, UpstreamCatalogByKind } from './upstream-catalog';

class FakeClock extends Clock {
  t = 1_000_000;
  override now(): number {
    return this.t;
  }
}

describe("a Gatehouse upstream's catalog as the filter of ours", () => {
  it('asks once per TTL, lowercases names, and shows nothing when the listing fails', async () => {
    const clock = new FakeClock();
    let answer: string[] | null = ['Acme/App'];
    let calls = 0;
    const client = {
      listCatalog: () => {
        calls++;
        return answer === null ? Promise.reject(new Error('upstream down')) : Promise.resolve(answer);
      },
    };
    const catalog = new GatehouseUpstreamCatalog(client, 60_000, clock);
    expect([...(await catalog.visible())]).toEqual(['acme/app']);
    clock.t += 59_000;
    await catalog.visible();
    expect(calls).toBe(1);

    clock.t += 1_000;
    answer = null;
    expect([...(await catalog.visible())]).toEqual([]);
    expect(calls).toBe(2);
  });

  it("filters by the upstream's kind at each request: a kind detected later applies from then on", async () => {
    let kind: 'forgejo' | 'gatehouse' = 'forgejo';
    const client = {
      listCatalog: () => Promise.resolve(['acme/app']),
      resolveKind: () => Promise.resolve(kind),
    };
    const catalog = new UpstreamCatalogByKind(client, 60_000, new FakeClock());
    expect(await catalog.visible()).toBeNull();
    kind = 'gatehouse';
    expect([...((await catalog.visible()) ?? [])]).toEqual(['acme/app']);
  });
});
