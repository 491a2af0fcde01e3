import { startUpstreamGatewayStack, StackMember, UpstreamGatewayStack } from '@gatehouse/testing/gateway';
import { seedDownloads } from '@gatehouse/testing/upstream';

const ADMIN_TOKEN = 'console-grant-preview-admin-token-0123456789';

const decode = (s: string) => s.replace(/&#(\d+);/g, (_, n: string) => String.fromCharCode(Number(n)));

/** The preview's lists by heading: `Admitted`, `Newly admitted`, `No longer admitted`. */
function lists(html: string): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const m of html.matchAll(/<h3>([^<]+)<\/h3>(?:<ul class="tags">([\s\S]*?)<\/ul>|<p class="empty">)/g))
    out[m[1]] = [...(m[2] ?? '').matchAll(/<code>([^<]*)<\/code>/g)].map((c) => decode(c[1]));
  return out;
}

/**
 * The console's rule editor for release and package grants, against the Forgejo front: what the
 * rules admit now and what a replaced grant would stop admitting, read through DownloadCatalog
 * and judged by the one matcher as downloads judge them; a saved grant downloads what it showed.
 */
describe('console rule preview for releases and generic packages', () => {
  let stack: UpstreamGatewayStack;
  let member: StackMember;
  let cookie: string;

  const preview = async (repository: string, tags: string) => {
    const q = new URLSearchParams({ member: member.username, repository, tags });
    const res = await fetch(`${stack.gw.url}/console/grant?${q}`, { headers: { cookie } });
    expect(res.status).toBe(200);
    return res.text();
  };

  beforeAll(async () => {
    stack = await startUpstreamGatewayStack({ patLabel: 'console-preview', gatewayEnv: { ADMIN_TOKEN } });
    stack.front.setTokenScopes(stack.pat, ['read:package', 'read:repository']);
    seedDownloads(stack.front);
    stack.front.addPackageFile('acme/cli', '1.5.0-RC1', 'cli.tar.gz', Buffer.from('rc'));
    member = await stack.member('preview', { 'packages:acme/cli': ['2.0.0'] });
    const signIn = await fetch(`${stack.gw.url}/console/login/token`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'sec-fetch-site': 'same-origin' },
      body: new URLSearchParams({ token: ADMIN_TOKEN }).toString(),
    });
    expect(signIn.status).toBe(200);
    cookie = signIn.headers.get('set-cookie')!.split(';')[0];
  }, 180_000);
  afterAll(() => stack?.stop());

  it('previews package versions in lowercase: admitted now, newly admitted, no longer admitted', async () => {
    stack.front.resetCounts();
    const html = await preview('packages:acme/cli', '1.4.*, 1.5.0-rc1');
    expect(html).toContain(`<h2 id="preview">What ${member.username} could download</h2>`);
    expect(html).toContain('2 of 3 published versions admitted now.');
    expect(lists(html)).toEqual({
      Admitted: ['1.5.0-RC1', '1.4.0'],
      'Newly admitted': ['1.5.0-RC1', '1.4.0'],
      'No longer admitted': ['2.0.0'],
    });
    // Read once from the upstream, then from the catalog's cache.
    await preview('packages:acme/cli', '*');
    expect(stack.front.countRequests((r) => r.kind === 'package-versions')).toBe(1);
  });

  it('previews release tags case-sensitively, and says so when nothing is published', async () => {
    const html = await preview('releases:acme/tool', 'semver:^1.0.0');
    expect(html).toContain('2 of 4 published releases admitted now.');
    // No grant to replace: nothing stops.
    expect(lists(html)).toEqual({ Admitted: ['v1.2.0', 'v1.0.0'] });
    expect(await preview('releases:acme/tool', 'V1.0.0')).toContain(
      'No published release matches these rules.',
    );
    expect(await preview('packages:acme/nothing', '*')).toContain(
      'The upstream has no such generic package, so no version is admitted now.',
    );
  });

  it('grants what it previewed: the member then downloads exactly those versions', async () => {
    const html = await preview('packages:acme/cli', '1.4.*, 1.5.0-rc1');
    const csrf = /name="_csrf" value="([^"]+)"/.exec(html)![1];
    const granted = await fetch(`${stack.gw.url}/console/grant`, {
      method: 'POST',
      redirect: 'manual',
      headers: {
        cookie,
        'content-type': 'application/x-www-form-urlencoded',
        'sec-fetch-site': 'same-origin',
      },
      body: new URLSearchParams({
        _csrf: csrf,
        member: member.username,
        repository: 'packages:acme/cli',
        tags: '1.4.*,1.5.0-rc1',
        expires: '',
      }).toString(),
    });
    expect(granted.status).toBe(303);
    let versions: string[] = [];
    // The grant reaches the member's cached entitlements within AUTH_STATE_CACHE_SECONDS.
    for (let i = 0; i < 50; i++) {
      const res = await fetch(`${stack.gw.url}/downloads/packages/acme/cli`, {
        headers: { authorization: member.basic },
      });
      versions = ((await res.json()) as { versions: Array<{ version: string }> }).versions.map(
        (v) => v.version,
      );
      if (!versions.includes('2.0.0')) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(versions).toEqual(lists(html).Admitted);
  });
});
