import { RequestContext } from '@gatehouse/observability';
import { closeFakes, fake, setup } from './testing/upstream-fakes';
import { MEMBER_TAG_HEADER, memberTagOf, UpstreamMemberTag } from './upstream-member-tag';

afterEach(closeFakes);

const key = Buffer.alloc(32, 1);
const inRequest = <T>(username: string | undefined, fn: () => T): T =>
  RequestContext.run({ requestId: 'r-1', ...(username ? { username } : {}) }, fn);

describe('member tags for an upstream Gatehouse', () => {
  it('are an HMAC of the lowercase username: stable, opaque, and different under another key', () => {
    const tag = memberTagOf(key, 'Alice');
    expect(tag).toMatch(/^m1-[0-9a-f]{32}$/);
    expect(memberTagOf(key, 'alice')).toBe(tag);
    expect(tag).not.toContain('alice');
    expect(memberTagOf(Buffer.alloc(32, 2), 'alice')).not.toBe(tag);
    expect(memberTagOf(key, 'bob')).not.toBe(tag);
  });

  it("are sent only when enabled and keyed, to a Gatehouse, for a member's request, never to storage", () => {
    let kind: 'forgejo' | 'gatehouse' = 'gatehouse';
    const on = new UpstreamMemberTag(true, () => kind);
    expect(inRequest('alice', () => on.headers('registry'))).toEqual({}); // no key yet
    on.useKey(key);
    const sent = { [MEMBER_TAG_HEADER]: memberTagOf(key, 'alice') };
    expect(inRequest('alice', () => on.headers('registry'))).toEqual(sent);
    expect(inRequest('alice', () => on.headers('realm'))).toEqual(sent);
    expect(inRequest('alice', () => on.headers('storage'))).toEqual({});
    expect(inRequest(undefined, () => on.headers('registry'))).toEqual({});
    kind = 'forgejo';
    expect(inRequest('alice', () => on.headers('registry'))).toEqual({});
    const off = new UpstreamMemberTag(false, () => 'gatehouse');
    off.useKey(key);
    expect(inRequest('alice', () => off.headers('registry'))).toEqual({});
  });

  it('reach the upstream as X-Gatehouse-Member-Tag beside the request id', async () => {
    const seen: Array<Record<string, unknown>> = [];
    const up = await fake((req, res) => {
      seen.push({ tag: req.headers[MEMBER_TAG_HEADER], id: req.headers['x-request-id'] });
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"releases":[]}');
    });
    const { client } = setup(up.url, { kind: 'gatehouse', sendMemberTag: true, username: 'site-b' });
    client.useMemberTagKey(key);
    await inRequest('alice', () => client.downloads.listReleases('acme', 'tool'));
    expect(seen).toEqual([{ tag: memberTagOf(key, 'alice'), id: 'r-1' }]);
    await client.close();
  });
});

describe('RequestContext.authenticated', () => {
  it('trusts an offered member tag only once the credentials are accepted', () => {
    RequestContext.run({ requestId: 'r', offeredMemberTag: 'm1-abc' }, () => {
      expect(RequestContext.current()?.clientMemberTag).toBeUndefined();
      RequestContext.authenticated({ memberId: 'id-1', username: 'site-b' });
      expect(RequestContext.current()).toMatchObject({ username: 'site-b', clientMemberTag: 'm1-abc' });
    });
    RequestContext.run({ requestId: 'r' }, () => {
      RequestContext.authenticated({ memberId: 'id-1', username: 'site-b' });
      expect(RequestContext.current()?.clientMemberTag).toBeUndefined();
    });
  });
});
