import { EntitlementService } from '@gatehouse/entitlements';
import { AccessKeyService } from '@gatehouse/members';
import { ManualClock } from '@gatehouse/observability';
import {
  createTestGateway,
  StackMember,
  startUpstreamGatewayStack,
  TestGateway,
  UpstreamGatewayStack,
} from '@gatehouse/testing/gateway';
import { seedDownloads } from '@gatehouse/testing/upstream';

/**
 * How a revocation on the vendor's Gatehouse A reaches the members of a customer-site mirror B
 * (dev-docs/operations.md, customer-site mirror): what B holds is re-checked with A after the tag
 * TTL; what B does not hold is asked of A at once.
 */
describe('a revocation on A reaches the members of a mirror B', () => {
  let stack: UpstreamGatewayStack;
  let service: StackMember;
  let b: TestGateway;
  let bob: StackMember;
  let aClosed = false;
  const clock = new ManualClock(Date.now());
  const TTL_MS = 60_000;

  beforeAll(async () => {
    stack = await startUpstreamGatewayStack({ patLabel: 'mirror-revocation' });
    stack.front.setTokenScopes(stack.pat, ['read:package', 'read:repository']);
    seedDownloads(stack.front);
    service = await stack.member('site-b', { 'acme/app': ['v1.*'], 'releases:acme/tool': ['semver:^1.0.0'] });
    await startB(service.key);
  });
  /** (Re)starts B with this access key on A; bob is B's member entitled to everything. */
  const startB = async (key: string) => {
    await b?.close();
    b = await createTestGateway({
      clock,
      env: {
        FORGEJO_BASE_URL: stack.gw.url,
        FORGEJO_API_USERNAME: service.username,
        FORGEJO_API_TOKEN: key,
        UPSTREAM_KIND: 'gatehouse',
        UPSTREAM_RETRIES: '0',
        OCI_TAG_TTL_SECONDS: String(TTL_MS / 1000),
      },
    });
    bob = await stack.member('bob', { 'acme/app': ['*'], 'releases:acme/tool': ['*'] }, b);
  };
  afterAll(async () => {
    await b?.close();
    if (!aClosed) await stack?.gw.close();
    await stack?.front.stop();
    await stack?.registry.stop();
  });

  const get = async (path: string, accept?: string) => {
    const token = await stack.token(bob, ['repository:acme/app:pull'], b);
    return fetch(`${b.url}${path}`, {
      headers: { authorization: `Bearer ${token}`, ...(accept ? { accept } : {}) },
    });
  };
  /** The first layer of the tag's image (its first platform's, for an index). */
  const firstLayer = async (tag: string): Promise<string> => {
    const accept = 'application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json';
    let m = (await (await get(`/v2/acme/app/manifests/${tag}`, accept)).json()) as {
      manifests?: Array<{ digest: string }>;
      layers?: Array<{ digest: string }>;
    };
    if (m.manifests)
      m = (await (await get(`/v2/acme/app/manifests/${m.manifests[0].digest}`, accept)).json()) as typeof m;
    return m.layers![0].digest;
  };
  const manifest = async (tag: string) => {
    const token = await stack.token(bob, ['repository:acme/app:pull'], b);
    const res = await fetch(`${b.url}/v2/acme/app/manifests/${tag}`, {
      headers: {
        authorization: `Bearer ${token}`,
        accept: 'application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json',
      },
    });
    await res.arrayBuffer();
    return res;
  };
  const releases = async () => {
    const res = await fetch(`${b.url}/downloads/releases/acme/tool`, {
      headers: { authorization: bob.basic },
    });
    if (res.status !== 200) return { status: res.status, tags: [] as string[] };
    const body = (await res.json()) as { releases: Array<{ tag: string }> };
    return { status: res.status, tags: body.releases.map((r) => r.tag).sort() };
  };

  it('a grant narrowed on A: at once for what B does not hold, within the tag TTL for what it holds', async () => {
    expect((await manifest('v1.0.0')).status).toBe(200);
    expect((await releases()).tags).toEqual(['v1.0.0', 'v1.2.0']);

    // A's operator narrows what B's service member may see: v1.0.0 only, no releases.
    const onA = stack.gw.app.get(EntitlementService);
    await onA.grant(service.username, 'acme/app', ['v1.0.0']);
    await onA.revoke(service.username, 'releases:acme/tool');

    // Not held by B: asked of A at once, and refused.
    expect((await manifest('v1.1.0')).status).toBe(404);
    // Held by B: served until the tag TTL passes, then re-checked with A.
    expect((await manifest('v1.0.0')).status).toBe(200);
    expect((await releases()).tags).toEqual(['v1.0.0', 'v1.2.0']);
    clock.advance(TTL_MS + 1_000);
    expect((await manifest('v1.0.0')).status).toBe(200);
    expect((await releases()).status).toBe(404);

    await onA.revoke(service.username, 'acme/app');
    expect((await manifest('v1.0.0')).status).toBe(200);
    clock.advance(TTL_MS + 1_000);
    expect((await manifest('v1.0.0')).status).toBe(404);
  });

  it("B's key revoked on A: what B holds is served stale as when A is away, nothing new; a new key restores B", async () => {
    const onA = stack.gw.app.get(EntitlementService);
    await onA.grant(service.username, 'acme/app', ['v1.*']);
    await onA.grant(service.username, 'releases:acme/tool', ['semver:^1.0.0']);
    clock.advance(TTL_MS + 1_000);
    expect((await manifest('v1.0.0')).status).toBe(200);

    const keys = stack.gw.app.get(AccessKeyService);
    for (const k of await keys.list(service.username)) await keys.revoke(k.id);
    clock.advance(TTL_MS + 1_000);
    // A refusal is a failure to B, not an answer: held tags serve up to OCI_TAG_STALE_MAX_SECONDS.
    const held = await manifest('v1.0.0');
    expect(held.status).toBe(200);
    expect(held.headers.get('warning')).toMatch(/^299 /);
    expect((await manifest('v1.1.0')).status).toBeGreaterThanOrEqual(500);

    const { key } = await keys.create(service.username, { name: 'new' });
    await startB(key);
  });

  it('A away: B serves the images and files it holds to members its rules admit, the rest is 503', async () => {
    const index = await manifest('v1.0.0');
    expect(index.status).toBe(200);
    const blob = await firstLayer('v1.0.0');
    expect((await get(`/v2/acme/app/blobs/${blob}`)).status).toBe(200);
    const asset = '/downloads/releases/acme/tool/v1.0.0/tool-linux-amd64';
    const warm = await fetch(`${b.url}${asset}`, { headers: { authorization: bob.basic } });
    expect(warm.status).toBe(200);
    const bytes = Buffer.from(await warm.arrayBuffer());

    await stack.gw.close();
    aClosed = true;
    clock.advance(TTL_MS + 1_000);
    const held = await manifest('v1.0.0');
    expect(held.status).toBe(200);
    expect(held.headers.get('warning')).toMatch(/^299 /);
    expect((await get(`/v2/acme/app/blobs/${blob}`)).status).toBe(200);
    const cached = await fetch(`${b.url}${asset}`, { headers: { authorization: bob.basic } });
    expect(cached.status).toBe(200);
    expect(Buffer.from(await cached.arrayBuffer()).equals(bytes)).toBe(true);
    // Not held: nothing to serve.
    expect((await manifest('v1.1.0')).status).toBe(503);
    // B's own rules still decide: a member of B without a grant gets nothing from the cache.
    const eve = await stack.member('eve', { 'acme/tool': ['*'] }, b);
    const refused = await fetch(`${b.url}${asset}`, { headers: { authorization: eve.basic } });
    expect(refused.status).toBe(404);
  });
});
