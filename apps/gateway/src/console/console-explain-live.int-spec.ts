import { startUpstreamGatewayStack, StackMember, UpstreamGatewayStack } from '@gatehouse/testing/gateway';
import { seedDownloads } from '@gatehouse/testing/upstream';

const ADMIN_TOKEN = 'console-explain-live-admin-token-0123456789';
const LIMIT = 4;

const decode = (s: string) =>
  s.replace(/&#(\d+);/g, (_, n: string) => String.fromCharCode(Number(n))).replace(/&amp;/g, '&');
const text = (html: string) => decode(html.replace(/<[^>]+>/g, ''));

/** The verdict heading and the checks, as text. */
function verdictOf(html: string): { heading: string; checks: string[]; sees: string } {
  const heading = text(/<h2 id="verdict"[^>]*>([\s\S]*?)<\/h2>/.exec(html)?.[1] ?? '');
  const checks = [
    ...(/<ol class="checks">([\s\S]*?)<\/ol>/.exec(html)?.[1] ?? '').matchAll(/<li[^>]*>([\s\S]*?)<\/li>/g),
  ].map((m) => text(m[1]));
  const sees = text(/<strong>What the client saw:<\/strong>([\s\S]*?)<\/p>/.exec(html)?.[1] ?? '').trim();
  return { heading, checks, sees };
}

/**
 * "Why can't X pull Y?" ends with the checks the database cannot make: the member's request limit
 * (the guard's own counters, read without counting) and whether the upstream has the tag.
 */
describe('console explain: rate limit and upstream checks', () => {
  let stack: UpstreamGatewayStack;
  let member: StackMember;
  let cookie: string;

  const explain = async (params: Record<string, string>) => {
    const res = await fetch(`${stack.gw.url}/console/explain?${new URLSearchParams(params)}`, {
      headers: { cookie },
    });
    expect(res.status).toBe(200);
    return verdictOf(await res.text());
  };

  const manifest = async (token: string, tag: string) => {
    const res = await fetch(`${stack.gw.url}/v2/acme/app/manifests/${tag}`, {
      headers: {
        authorization: `Bearer ${token}`,
        accept: 'application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json',
      },
    });
    await res.arrayBuffer();
    return { status: res.status, requestId: res.headers.get('x-request-id') ?? '' };
  };

  beforeAll(async () => {
    stack = await startUpstreamGatewayStack({
      gatewayEnv: {
        ADMIN_TOKEN,
        RATE_LIMIT_V2_PER_MEMBER: String(LIMIT),
        RATE_LIMIT_WINDOW_SECONDS: '600',
      },
    });
    stack.front.setTokenScopes(stack.pat, ['read:package', 'read:repository']);
    seedDownloads(stack.front);
    member = await stack.member('live', { 'acme/app': ['v1.*'], 'releases:acme/tool': ['v1.*'] });
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

  it('lists the checks in order, ending with the rate limit and the upstream', async () => {
    const v = await explain({ member: member.username, image: 'acme/app:v1.0.0' });
    expect(v.heading).toBe(`Allowed: ${member.username} → acme/app:v1.0.0`);
    expect(v.checks.map((c) => c.split(':')[0].replace(/^ok\s+/, ''))).toEqual([
      'member',
      'access_keys',
      'entitlement',
      'rate_limit',
      'upstream',
    ]);
    expect(v.checks[3]).toContain(
      `under the limit: 0 of ${LIMIT} requests in the last 600 s on this replica`,
    );
    expect(v.checks[4]).toContain('the upstream has tag v1.0.0');
  });

  it('says when an entitled tag does not exist upstream, and what the client gets', async () => {
    const v = await explain({ member: member.username, image: 'acme/app:v1.9.9' });
    expect(v.heading).toBe(
      `Allowed, but not served now: ${member.username} → acme/app:v1.9.9 (upstream_unknown)`,
    );
    expect(v.checks[4]).toMatch(/^NO upstream: the upstream has no tag v1\.9\.9 \(\d+ listed\)$/);
    expect(v.sees).toBe('404 MANIFEST_UNKNOWN');
  });

  it('explains releases and package versions too, against what the upstream publishes', async () => {
    const release = await explain({ member: member.username, image: 'releases:acme/tool@v1.0.0' });
    expect(release.heading).toBe(`Allowed: ${member.username} → releases:acme/tool@v1.0.0`);
    expect(release.checks[4]).toBe('ok upstream: the upstream has release v1.0.0');
    const version = await explain({ member: member.username, image: 'packages:acme/cli@1.4.0' });
    expect(version.heading).toBe(
      `Not allowed: ${member.username} → packages:acme/cli@1.4.0 (repository_not_entitled)`,
    );
    expect(version.checks[4]).toBe('ok upstream: the upstream has version 1.4.0');
    const missing = await explain({ member: member.username, image: 'releases:acme/tool@v1.9.9' });
    expect(missing.heading).toContain('Allowed, but not served now');
    expect(missing.checks[4]).toMatch(/^NO upstream: the upstream has no release v1\.9\.9/);
  });

  it('says when the member is rate limited now, from a pasted request id of the 429', async () => {
    const token = await stack.token(member, ['repository:acme/app:pull']);
    for (let i = 0; i < LIMIT; i++) expect((await manifest(token, 'v1.0.0')).status).toBe(200);
    const limited = await manifest(token, 'v1.0.0');
    expect(limited.status).toBe(429);
    // Explaining reads the counters without counting: asking twice changes nothing.
    await explain({ member: member.username, image: 'acme/app:v1.0.0' });
    const v = await explain({ member: member.username, image: 'acme/app:v1.0.0' });
    expect(v.heading).toBe(
      `Allowed, but not served now: ${member.username} → acme/app:v1.0.0 (rate_limited)`,
    );
    expect(v.checks[3]).toMatch(
      new RegExp(
        `^NO rate_limit: limited: ${LIMIT} of ${LIMIT} requests in the last 600 s on this replica; the next request fits in \\d+ s$`,
      ),
    );
    expect(v.checks[4]).toContain('the upstream has tag v1.0.0');
    expect(v.sees).toMatch(/^429 TOOMANYREQUESTS with Retry-After: \d+/);

    // The refused request's audit row lands through the batched writer.
    let pasted: ReturnType<typeof verdictOf> | null = null;
    for (let i = 0; i < 50; i++) {
      const res = await fetch(
        `${stack.gw.url}/console/explain?${new URLSearchParams({ request: `error (request id ${limited.requestId})` })}`,
        { headers: { cookie } },
      );
      const html = await res.text();
      if (res.status === 200 && html.includes('id="verdict"')) {
        expect(html).toContain(`denied (rate_limited), HTTP 429`);
        pasted = verdictOf(html);
        break;
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(pasted?.heading).toContain('(rate_limited)');
  });
});
