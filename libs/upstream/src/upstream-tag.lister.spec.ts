import { closeFakes, fake, setup } from './testing/upstream-fakes';

// The client through its facade, against local HTTP fakes (testing/upstream-fakes.ts).

afterEach(closeFakes);

describe('UpstreamRegistryClient: tags', () => {
  it("follows Link and stops on Forgejo's extra empty page", async () => {
    const all = ['a', 'b', 'c', 'd', 'e'];
    const f = await fake((req, res) => {
      const u = new URL(req.url!, 'http://x');
      if (u.pathname === '/v2/') return void res.writeHead(200).end();
      const n = Number(u.searchParams.get('n') ?? '100');
      const last = u.searchParams.get('last');
      const tags = all.filter((t) => !last || t > last).slice(0, n);
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (tags.length > 0)
        headers.link = `</v2/acme/app/tags/list?last=${tags[tags.length - 1]}&n=${n}>; rel="next"`;
      res.writeHead(200, headers).end(JSON.stringify({ name: 'acme/app', tags }));
    });
    const { client } = setup(f.url);
    expect(await client.listAllTags('acme/app', { pageSize: 2 })).toEqual({
      found: true,
      name: 'acme/app',
      tags: all,
    });
    // 3 full pages + the extra empty one.
    expect(f.hits.filter((h) => h.path.includes('tags/list'))).toHaveLength(4);
    expect(await client.listTags('acme/app', { n: 2, last: 'b' })).toEqual({
      found: true,
      name: 'acme/app',
      tags: ['c', 'd'],
      next: { last: 'd', n: 2 },
    });
    await client.close();
  });
});
