import { AuditQueryService, AuditService } from '@gatehouse/audit';
import { AccessExplainService } from '@gatehouse/entitlements';
import {
  StackMember,
  startUpstreamGatewayStack,
  TestGateway,
  UpstreamGatewayStack,
} from '@gatehouse/testing/gateway';
import { ForgejoFront, seedImage } from '@gatehouse/testing/upstream';

/** Spellings of `tag` that differ only in letter case, the canonical (lowercase) one first. */
function spellings(tag: string): string[] {
  const letters = [...tag].flatMap((c, i) => (c.toLowerCase() !== c.toUpperCase() ? [i] : []));
  const out = new Set<string>([tag]);
  for (let mask = 1; mask < 1 << letters.length; mask++) {
    const chars = [...tag];
    letters.forEach((at, bit) => {
      if (mask & (1 << bit)) chars[at] = chars[at].toUpperCase();
    });
    out.add(chars.join(''));
  }
  return [...out];
}

/**
 * A request is admitted only if the tag the upstream will serve for it is admitted. The Forgejo
 * front finds tags case-insensitively, as Forgejo does, so every case variant of a refused tag
 * is an attempt to reach the refused image: each must be the 404 of a tag that does not exist,
 * without the upstream being asked for it, and `explain` must give the same verdict.
 */
describe('canonical tags: case variants against the Forgejo front', () => {
  let stack: UpstreamGatewayStack;
  let front: ForgejoFront;
  let gw: TestGateway;
  const members: Record<string, StackMember> = {};
  const tokens: Record<string, string> = {};

  // kind → [rules, a refused tag the seed has, an admitted tag the seed has]
  const kinds: Record<string, [rules: string[], refused: string, admitted: string]> = {
    exact: [['v1.0.0'], 'v1.1.0', 'v1.0.0'],
    glob: [['v1.0.*'], 'v1.1.0', 'v1.0.0'],
    // The reported hole: rC sorts before rc in ASCII, so v2.0.0-rC.1 fell inside this range.
    semver: [['semver:>=2.0.0-beta <2.0.0-rc'], 'v2.0.0-rc.1', ''],
  };

  const manifestRequestsFor = (tag: string) =>
    front.countRequests((r) => r.kind === 'manifest' && r.reference?.toLowerCase() === tag.toLowerCase());

  async function pull(kind: string, tag: string, method: 'GET' | 'HEAD' = 'GET') {
    return fetch(`${gw.url}/v2/acme/app/manifests/${tag}`, {
      method,
      headers: {
        authorization: `Bearer ${tokens[kind]}`,
        accept: 'application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json',
      },
    });
  }

  beforeAll(async () => {
    stack = await startUpstreamGatewayStack({ patLabel: 'canonical-tags' });
    ({ front, gw } = stack);
    for (const [kind, [rules]] of Object.entries(kinds)) {
      members[kind] = await stack.member(kind, { 'acme/app': rules });
      tokens[kind] = await stack.token(members[kind], ['repository:acme/app:pull']);
    }
  });

  afterAll(async () => {
    await stack?.stop();
  });

  it('the front serves a refused image for a case variant of its tag (what the gateway must not pass on)', async () => {
    const jwt = await front.mintJwt(stack.pat);
    const rc = seedImage(stack.seed, 'acme/app', 'v2.0.0-rc.1');
    for (const spelling of ['v2.0.0-rC.1', 'V2.0.0-RC.1']) {
      const res = await fetch(`${front.url}/v2/acme/app/manifests/${spelling}`, {
        method: 'HEAD',
        headers: { authorization: `Bearer ${jwt}` },
      });
      expect({ spelling, status: res.status, digest: res.headers.get('docker-content-digest') }).toEqual({
        spelling,
        status: 200,
        digest: rc.digest,
      });
    }
  });

  describe.each(Object.keys(kinds))('%s rule', (kind) => {
    const [, refused, admitted] = kinds[kind];

    it(`refuses every spelling of ${refused} with 404 MANIFEST_UNKNOWN, without asking upstream, and explain agrees`, async () => {
      const explain = gw.app.get(AccessExplainService);
      front.resetCounts();
      const unexpected: string[] = [];
      for (const spelling of spellings(refused)) {
        for (const method of ['GET', 'HEAD'] as const) {
          const res = await pull(kind, spelling, method);
          const code =
            method === 'GET'
              ? ((await res.json()) as { errors: Array<{ code: string }> }).errors[0].code
              : '';
          if (res.status !== 404 || (method === 'GET' && code !== 'MANIFEST_UNKNOWN'))
            unexpected.push(`${method} ${spelling} -> ${res.status} ${code}`);
        }
        const verdict = (await explain.explain(members[kind].username, 'acme/app', spelling)).verdict;
        if (verdict.allowed || verdict.reason !== 'tag_not_entitled')
          unexpected.push(`explain ${spelling} -> ${verdict.allowed ? 'ALLOWED' : verdict.reason}`);
      }
      expect(unexpected).toEqual([]);
      expect(manifestRequestsFor(refused)).toBe(0);

      await gw.app.get(AuditService).flush(10_000);
      const rows = await gw.app
        .get(AuditQueryService)
        .find({ username: members[kind].username, action: 'manifest.get', limit: 500 });
      const variantRows = rows.filter((r) => r.reference?.toLowerCase() === refused);
      expect(variantRows.length).toBe(spellings(refused).length);
      expect(new Set(variantRows.map((r) => `${r.outcome} ${r.reason}`))).toEqual(
        new Set(['denied tag_not_entitled']),
      );
    });

    if (admitted) {
      it(`serves every spelling of ${admitted} as the one image the upstream has for it, and explain agrees`, async () => {
        const image = seedImage(stack.seed, 'acme/app', admitted);
        const explain = gw.app.get(AccessExplainService);
        const unexpected: string[] = [];
        for (const spelling of spellings(admitted)) {
          const res = await pull(kind, spelling, 'HEAD');
          if (res.status !== 200 || res.headers.get('docker-content-digest') !== image.digest)
            unexpected.push(`HEAD ${spelling} -> ${res.status} ${res.headers.get('docker-content-digest')}`);
          const verdict = (await explain.explain(members[kind].username, 'acme/app', spelling)).verdict;
          if (!verdict.allowed) unexpected.push(`explain ${spelling} -> ${verdict.reason}`);
        }
        expect(unexpected).toEqual([]);
        // The gateway asks upstream for the form it judged: one tag, however it was spelled.
        expect(
          front.requests
            .filter((r) => r.kind === 'manifest' && r.reference?.toLowerCase() === admitted)
            .map((r) => r.reference)
            .every((ref) => ref === admitted),
        ).toBe(true);
      });
    }
  });

  it('lists only admitted tags and refuses the digest of a refused tag for the semver rule', async () => {
    const rc = seedImage(stack.seed, 'acme/app', 'v2.0.0-rc.1');
    const tags = await fetch(`${gw.url}/v2/acme/app/tags/list`, {
      headers: { authorization: `Bearer ${tokens.semver}` },
    });
    expect(await tags.json()).toEqual({ name: 'acme/app', tags: [] });
    const byDigest = await fetch(`${gw.url}/v2/acme/app/manifests/${rc.digest}`, {
      headers: { authorization: `Bearer ${tokens.semver}` },
    });
    expect(byDigest.status).toBe(404);
  });

  describe('the error table on the wire', () => {
    const code = async (res: Response) =>
      ((await res.json()) as { errors: Array<{ code: string }> }).errors[0].code;
    const invalidTags = ['-v1', '.hidden', 'v'.repeat(129), 'v1~x'];

    it('answers an invalid tag with the auth challenge first, then 404 MANIFEST_UNKNOWN (GET and HEAD)', async () => {
      for (const tag of invalidTags) {
        const anonymous = await fetch(`${gw.url}/v2/acme/app/manifests/${tag}`);
        expect({ tag, status: anonymous.status }).toEqual({ tag, status: 401 });
        expect(anonymous.headers.get('www-authenticate')).toMatch(/^Bearer realm=/);
        const get = await pull('exact', tag);
        expect({ tag, status: get.status, code: await code(get) }).toEqual({
          tag,
          status: 404,
          code: 'MANIFEST_UNKNOWN',
        });
        expect({ tag, status: (await pull('exact', tag, 'HEAD')).status }).toEqual({ tag, status: 404 });
      }
      expect(
        front.countRequests((r) => r.kind === 'manifest' && invalidTags.includes(r.reference ?? '')),
      ).toBe(0);
      await gw.app.get(AuditService).flush(10_000);
      const rows = await gw.app
        .get(AuditQueryService)
        .find({ username: members.exact.username, reason: 'tag_invalid' });
      expect(rows.length).toBe(invalidTags.length * 2);
    });

    it('refuses an invalid tag of an unentitled repository as the repository, not the tag', async () => {
      const res = await fetch(`${gw.url}/v2/other/secret/manifests/-v1`, {
        headers: { authorization: `Bearer ${tokens.exact}` },
      });
      expect({ status: res.status, code: await code(res) }).toEqual({ status: 404, code: 'NAME_UNKNOWN' });
    });

    it('answers a bad n on tags/list and _catalog with 400 PAGINATION_NUMBER_INVALID', async () => {
      const tags = await fetch(`${gw.url}/v2/acme/app/tags/list?n=-1`, {
        headers: { authorization: `Bearer ${tokens.exact}` },
      });
      expect({ status: tags.status, code: await code(tags) }).toEqual({
        status: 400,
        code: 'PAGINATION_NUMBER_INVALID',
      });
      const catalogToken = await stack.token(members.exact, ['registry:catalog:*']);
      const catalog = await fetch(`${gw.url}/v2/_catalog?n=abc`, {
        headers: { authorization: `Bearer ${catalogToken}` },
      });
      expect({ status: catalog.status, code: await code(catalog) }).toEqual({
        status: 400,
        code: 'PAGINATION_NUMBER_INVALID',
      });
    });
  });
});
