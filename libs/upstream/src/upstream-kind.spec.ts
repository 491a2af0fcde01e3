import { createCapturingLogger } from '@gatehouse/observability';
import { closeFakes, fake, setup } from './testing/upstream-fakes';
import { kindOfAnswer, UpstreamKindState } from './upstream-kind';

afterEach(closeFakes);

/** An upstream whose `/v2/` asks for Basic; `gatehouse` adds the Gatehouse API version header. */
async function upstream(gatehouse: boolean) {
  return fake((req, res) => {
    const extra: Record<string, string> = gatehouse ? { 'Gatehouse-Api-Version': '1' } : {};
    if (req.url === '/v2/') {
      res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="x"', ...extra }).end();
    } else if (req.url?.startsWith('/downloads/releases/acme/tool')) {
      res.writeHead(200, { 'content-type': 'application/json', ...extra });
      res.end(JSON.stringify({ releases: [{ tag: 'v1', assets: [] }] }));
    } else if (req.url?.startsWith('/api/v1/repos/acme/tool/releases')) {
      res.writeHead(200, { 'content-type': 'application/json' }).end('[{"tag_name":"v1","assets":[]}]');
    } else res.writeHead(404).end();
  });
}

describe('the upstream kind', () => {
  it('is gatehouse when an answer carries a numeric Gatehouse-Api-Version, else forgejo', () => {
    expect(kindOfAnswer({ 'gatehouse-api-version': '1' })).toBe('gatehouse');
    expect(kindOfAnswer({ 'gatehouse-api-version': ['2'] })).toBe('gatehouse');
    expect(kindOfAnswer({ 'gatehouse-api-version': 'yes' })).toBe('forgejo');
    expect(kindOfAnswer({ 'docker-distribution-api-version': 'registry/2.0' })).toBe('forgejo');
  });

  it('is detected and logged once per change; a configured kind wins and is never replaced', () => {
    const { logger, lines } = createCapturingLogger('debug');
    const detected = new UpstreamKindState(null, logger);
    expect(detected.status()).toEqual({ kind: 'forgejo', source: 'assumed' });
    expect(detected.known).toBe(false);
    detected.observe({ 'gatehouse-api-version': '1' });
    detected.observe({ 'gatehouse-api-version': '1' });
    expect(detected.status()).toEqual({ kind: 'gatehouse', source: 'detected' });
    const logged = () => lines().filter((l) => l.upstreamKind !== undefined);
    expect(logged()).toHaveLength(1);
    expect(logged()[0].msg).toContain('another Gatehouse');
    detected.observe({});
    expect(detected.current).toBe('forgejo');
    expect(logged()).toHaveLength(2);

    const configured = new UpstreamKindState('forgejo', logger);
    configured.observe({ 'gatehouse-api-version': '1' });
    expect(configured.status()).toEqual({ kind: 'forgejo', source: 'configured' });
    expect(logged()).toHaveLength(2);
  });

  it("with UPSTREAM_KIND unset, the first download asks the upstream's /v2/ first and uses the routes of its kind", async () => {
    for (const gatehouse of [true, false]) {
      const up = await upstream(gatehouse);
      const { client } = setup(up.url, { kind: null, username: 'site-b' });
      const listed = await client.downloads.listReleases('acme', 'tool');
      expect(listed).toMatchObject({ found: true, releases: [{ tag: 'v1' }] });
      expect(up.hits.map((h) => h.path.split('?')[0])).toEqual([
        '/v2/',
        gatehouse ? '/downloads/releases/acme/tool' : '/api/v1/repos/acme/tool/releases',
      ]);
      expect(client.kindStatus()).toEqual({ kind: gatehouse ? 'gatehouse' : 'forgejo', source: 'detected' });
      await client.close();
    }
  });

  it('an explicit UPSTREAM_KIND wins over what the upstream answers, and asks nothing first', async () => {
    const up = await upstream(true);
    const { client } = setup(up.url, { kind: 'forgejo' });
    await client.downloads.listReleases('acme', 'tool');
    expect(up.hits.map((h) => h.path.split('?')[0])).toEqual(['/api/v1/repos/acme/tool/releases']);
    expect(client.kindStatus()).toEqual({ kind: 'forgejo', source: 'configured' });
    await client.close();
  });
});
