import { AccessExplainService } from '@gatehouse/entitlements';
import { PullThroughService } from '@gatehouse/pull-through';
import {
  StackMember,
  startUpstreamGatewayStack,
  TestGateway,
  UpstreamGatewayStack,
} from '@gatehouse/testing/gateway';
import {
  ForgejoFront,
  OCI_INDEX,
  PushedManifest,
  pushArtifact,
  pushManifest,
  SeedImage,
  seedImage,
} from '@gatehouse/testing/upstream';

const COSIGN_SIG_CONFIG = 'application/vnd.dev.cosign.artifact.sig.v1+json';
const SIMPLE_SIGNING = 'application/vnd.dev.cosign.simplesigning.v1+json';
const DSSE = 'application/vnd.dsse.envelope.v1+json';
const SPDX = 'application/spdx+json';

const hexOf = (digest: string) => digest.slice('sha256:'.length);
const artifactTag = (digest: string, suffix = '') => `sha256-${hexOf(digest)}${suffix}`;
const descriptorOf = (m: PushedManifest) => ({ mediaType: m.mediaType, digest: m.digest, size: m.size });

/**
 * Issue 17, items 1, 2 and 4 against the Forgejo front: artifacts (signatures, attestations,
 * SBOMs, tag-schema indexes) follow their subject, and the gateway serves the referrers API
 * Forgejo lacks from the tag schema. The front answers referrers with Forgejo's empty 404, so
 * the fallback is what is mostly exercised; the last part switches on the front's OCI 1.1
 * referrers API and shows the gateway serving the upstream's own list.
 */
describe('signatures and referrers of entitled images (against the Forgejo front)', () => {
  let stack: UpstreamGatewayStack;
  let front: ForgejoFront;
  let gw: TestGateway;
  let pinned: StackMember;
  let rcMember: StackMember;
  let pinnedToken: string;
  let rcToken: string;
  let v100: SeedImage;
  let v110: SeedImage;
  let rc: SeedImage;
  let sig100: PushedManifest;
  let att100: PushedManifest;
  let sig110: PushedManifest;
  let sbomRc: PushedManifest;
  const unknownSubject = `sha256:${'ab'.repeat(32)}`;

  /** Upstream requests that name the digest's hex anywhere (artifact tags, the digest itself). */
  const upstreamAsked = (digest: string) =>
    front.countRequests((r) => `${r.path}${r.query}`.includes(hexOf(digest)));

  const get = (token: string, path: string, accept?: string) =>
    fetch(`${gw.url}/v2/acme/app/${path}`, {
      headers: {
        authorization: `Bearer ${token}`,
        ...(accept ? { accept } : {}),
      },
    });
  const errorCode = async (res: Response) =>
    ((await res.json()) as { errors: Array<{ code: string }> }).errors[0].code;

  beforeAll(async () => {
    stack = await startUpstreamGatewayStack({ patLabel: 'referrers' });
    ({ front, gw } = stack);
    v100 = seedImage(stack.seed, 'acme/app', 'v1.0.0');
    v110 = seedImage(stack.seed, 'acme/app', 'v1.1.0');
    rc = seedImage(stack.seed, 'acme/app', 'v2.0.0-rc.1');
    const registry = stack.registry.url;
    // cosign's layout: a signature at sha256-<hex>.sig whose artifact type is its config's media type
    sig100 = await pushArtifact(registry, 'acme/app', {
      subject: v100,
      tag: artifactTag(v100.digest, '.sig'),
      configMediaType: COSIGN_SIG_CONFIG,
      layerMediaType: SIMPLE_SIGNING,
      payload: JSON.stringify({ critical: { image: { 'docker-manifest-digest': v100.digest } } }),
      layerAnnotations: { 'dev.cosignproject.cosign/signature': 'MEUCIQ-test-signature' },
    });
    att100 = await pushArtifact(registry, 'acme/app', {
      subject: v100,
      tag: artifactTag(v100.digest, '.att'),
      artifactType: DSSE,
      layerMediaType: DSSE,
      payload: '{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[]}',
      annotations: { 'org.opencontainers.image.created': '2026-01-01T00:00:00Z' },
    });
    sig110 = await pushArtifact(registry, 'acme/app', {
      subject: v110,
      tag: artifactTag(v110.digest, '.sig'),
      configMediaType: COSIGN_SIG_CONFIG,
      layerMediaType: SIMPLE_SIGNING,
      payload: JSON.stringify({ critical: { image: { 'docker-manifest-digest': v110.digest } } }),
    });
    // The OCI 1.1 tag schema: an index at sha256-<hex> lists the referrers (an SBOM, by digest only).
    sbomRc = await pushArtifact(registry, 'acme/app', {
      subject: rc,
      artifactType: SPDX,
      layerMediaType: SPDX,
      payload: '{"spdxVersion":"SPDX-2.3","name":"acme/app"}',
      annotations: { 'org.example.sbom.format': 'spdx' },
    });
    await pushManifest(registry, 'acme/app', artifactTag(rc.digest), {
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: [
        { ...descriptorOf(sbomRc), artifactType: SPDX, annotations: { 'org.example.sbom.format': 'spdx' } },
      ],
    });
    pinned = await stack.member('pinned', { 'acme/app': ['v1.0.0'] });
    rcMember = await stack.member('rc', { 'acme/app': ['v2.0.0-rc.1'] });
    pinnedToken = await stack.token(pinned, ['repository:acme/app:pull']);
    rcToken = await stack.token(rcMember, ['repository:acme/app:pull']);
  });

  afterAll(async () => {
    await stack?.stop();
  });

  describe('artifact tags follow their subject', () => {
    it("serves the signature and attestation of an entitled image, and their manifests' blobs", async () => {
      for (const [suffix, pushed] of [
        ['.sig', sig100],
        ['.att', att100],
      ] as const) {
        const res = await get(pinnedToken, `manifests/${artifactTag(v100.digest, suffix)}`, pushed.mediaType);
        expect({ suffix, status: res.status, digest: res.headers.get('docker-content-digest') }).toEqual({
          suffix,
          status: 200,
          digest: pushed.digest,
        });
        expect(Buffer.from(await res.arrayBuffer()).equals(pushed.body)).toBe(true);
      }
      const layer = (JSON.parse(sig100.body.toString()) as { layers: Array<{ digest: string }> }).layers[0];
      const blob = await get(pinnedToken, `blobs/${layer.digest}`);
      expect(blob.status).toBe(200);
      expect(JSON.parse(await blob.text())).toEqual({
        critical: { image: { 'docker-manifest-digest': v100.digest } },
      });
      const byDigest = await get(pinnedToken, `manifests/${sig100.digest}`, sig100.mediaType);
      expect(byDigest.status).toBe(200);
      // Forgejo folds tag case: an upper-case spelling is the same artifact tag, judged the same.
      const upper = await get(pinnedToken, `manifests/${artifactTag(v100.digest, '.sig').toUpperCase()}`);
      expect([upper.status, upper.headers.get('docker-content-digest')]).toEqual([200, sig100.digest]);
      const upperRefused = await get(
        pinnedToken,
        `manifests/${artifactTag(v110.digest, '.sig').toUpperCase()}`,
      );
      expect(upperRefused.status).toBe(404);
    });

    it("answers an unentitled or unknown subject's artifact tags as unknown tags, asking upstream nothing about them", async () => {
      front.resetCounts();
      const refused = [
        artifactTag(v110.digest, '.sig'),
        artifactTag(v110.digest, '.att'),
        artifactTag(v110.digest),
        artifactTag(unknownSubject, '.sig'),
        artifactTag(unknownSubject, '.sbom'),
      ];
      const got: string[] = [];
      for (const tag of refused) {
        const res = await get(pinnedToken, `manifests/${tag}`);
        got.push(`${tag} ${res.status} ${await errorCode(res)}`);
      }
      expect(got).toEqual(refused.map((tag) => `${tag} 404 MANIFEST_UNKNOWN`));
      // The signature of the refused image, by digest, and its blob: not reachable either.
      const byDigest = await get(pinnedToken, `manifests/${sig110.digest}`);
      expect([byDigest.status, await errorCode(byDigest)]).toEqual([404, 'MANIFEST_UNKNOWN']);
      expect(upstreamAsked(v110.digest)).toBe(0);
      expect(upstreamAsked(unknownSubject)).toBe(0);
      expect(upstreamAsked(sig110.digest)).toBe(0);
    });

    it('lists the artifact tags of entitled digests in tags/list, and no others', async () => {
      const res = await get(pinnedToken, 'tags/list');
      expect(await res.json()).toEqual({
        name: 'acme/app',
        tags: [artifactTag(v100.digest, '.att'), artifactTag(v100.digest, '.sig'), 'v1.0.0'],
      });
      const rcList = await get(rcToken, 'tags/list');
      expect(await rcList.json()).toEqual({
        name: 'acme/app',
        tags: [artifactTag(rc.digest), 'v2.0.0-rc.1'],
      });
    });

    it('explain says why an artifact tag is admitted ("signature of v1.0.0"), by the same decision', async () => {
      const explain = gw.app.get(AccessExplainService);
      const pull = gw.app.get(PullThroughService);
      const ok = await explain.explain(pinned.username, 'acme/app', artifactTag(v100.digest, '.sig'), pull);
      expect(ok.verdict.allowed).toBe(true);
      expect(ok.verdict.checks.find((c) => c.check === 'entitlement')!.detail).toContain(
        'signature of v1.0.0',
      );
      const att = await explain.explain(pinned.username, 'acme/app', artifactTag(v100.digest, '.att'), pull);
      expect(att.verdict.checks.find((c) => c.check === 'entitlement')!.detail).toContain(
        'attestation of v1.0.0',
      );
      const refused = await explain.explain(
        pinned.username,
        'acme/app',
        artifactTag(v110.digest, '.sig'),
        pull,
      );
      expect([refused.verdict.allowed, refused.verdict.reason]).toEqual([false, 'subject_not_reachable']);
      expect(refused.verdict.memberSees).toContain('404 MANIFEST_UNKNOWN');
      // Without the pull path (the CLI) the subject cannot be checked, and the answer says so.
      const unchecked = await explain.explain(pinned.username, 'acme/app', artifactTag(v100.digest, '.sig'));
      expect(unchecked.verdict.reason).toBe('subject_not_reachable');
      expect(unchecked.verdict.checks.find((c) => c.check === 'entitlement')!.detail).toContain(
        'not checked',
      );
    });
  });

  describe('the referrers API (distribution-spec 1.1 content discovery)', () => {
    const referrers = (token: string, digest: string, query = '') =>
      get(token, `referrers/${digest}${query}`);

    it("answers a reachable subject with an image index of its .sig/.att artifacts' descriptors", async () => {
      front.resetCounts();
      const res = await referrers(pinnedToken, v100.digest);
      expect(res.status).toBe(200);
      // The upstream's referrers API was asked first (Forgejo's empty 404), then the tag schema.
      const asked = front.requests.filter((r) => r.repository === 'acme/app').map((r) => r.kind);
      expect(asked[0]).toBe('referrers');
      expect(asked.filter((k) => k === 'referrers')).toHaveLength(1);
      expect(res.headers.get('content-type')).toBe(OCI_INDEX);
      expect(res.headers.get('oci-filters-applied')).toBeNull();
      expect(await res.json()).toEqual({
        schemaVersion: 2,
        mediaType: OCI_INDEX,
        manifests: [
          { ...descriptorOf(sig100), artifactType: COSIGN_SIG_CONFIG },
          {
            ...descriptorOf(att100),
            artifactType: DSSE,
            annotations: { 'org.opencontainers.image.created': '2026-01-01T00:00:00Z' },
          },
        ],
      });
    });

    it('applies the artifactType filter and says so in OCI-Filters-Applied', async () => {
      const res = await referrers(pinnedToken, v100.digest, `?artifactType=${encodeURIComponent(DSSE)}`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe(OCI_INDEX);
      expect(res.headers.get('oci-filters-applied')).toBe('artifactType');
      const body = (await res.json()) as { manifests: Array<{ digest: string }> };
      expect(body.manifests.map((m) => m.digest)).toEqual([att100.digest]);
      const none = await referrers(pinnedToken, v100.digest, '?artifactType=application/x-none');
      expect(none.headers.get('oci-filters-applied')).toBe('artifactType');
      expect(((await none.json()) as { manifests: unknown[] }).manifests).toEqual([]);
    });

    it('reads the tag-schema index at sha256-<hex> when there is one, and its referrers are pullable', async () => {
      front.resetCounts();
      const res = await referrers(rcToken, rc.digest);
      expect(res.status).toBe(200);
      // Another subject of the same repository within the tag TTL: the "no referrers API" answer
      // is remembered, so the upstream API is not asked again.
      expect(front.countRequests((r) => r.kind === 'referrers')).toBe(0);
      expect(front.countRequests((r) => r.kind === 'manifest')).toBeGreaterThan(0);
      expect(await res.json()).toEqual({
        schemaVersion: 2,
        mediaType: OCI_INDEX,
        manifests: [
          { ...descriptorOf(sbomRc), artifactType: SPDX, annotations: { 'org.example.sbom.format': 'spdx' } },
        ],
      });
      const sbom = await get(rcToken, `manifests/${sbomRc.digest}`, sbomRc.mediaType);
      expect(sbom.status).toBe(200);
    });

    it('answers an unreachable or unknown subject with the same empty index (200), asking upstream nothing', async () => {
      front.resetCounts();
      const empty = { schemaVersion: 2, mediaType: OCI_INDEX, manifests: [] };
      for (const [token, digest] of [
        [pinnedToken, v110.digest],
        [pinnedToken, rc.digest],
        [pinnedToken, unknownSubject],
        [rcToken, v100.digest],
      ]) {
        const res = await referrers(token, digest);
        expect({ digest, status: res.status, type: res.headers.get('content-type') }).toEqual({
          digest,
          status: 200,
          type: OCI_INDEX,
        });
        expect(await res.json()).toEqual(empty);
      }
      expect(upstreamAsked(v110.digest)).toBe(0);
      expect(upstreamAsked(unknownSubject)).toBe(0);
    });

    it('keeps a list for the tag TTL: a repeated question asks upstream nothing', async () => {
      await referrers(pinnedToken, v100.digest);
      front.resetCounts();
      const again = await referrers(pinnedToken, v100.digest);
      expect(again.status).toBe(200);
      expect(front.countRequests((r) => r.kind === 'manifest')).toBe(0);
      expect(front.countRequests((r) => r.kind === 'referrers')).toBe(0);
    });

    it('keeps the repository rule (404 NAME_UNKNOWN) and the digest grammar (400 DIGEST_INVALID)', async () => {
      const other = await fetch(`${gw.url}/v2/other/secret/referrers/${v100.digest}`, {
        headers: { authorization: `Bearer ${pinnedToken}` },
      });
      expect(other.status).toBe(404);
      const bad = await referrers(pinnedToken, 'sha256:not-hex');
      expect([bad.status, await errorCode(bad)]).toEqual([400, 'DIGEST_INVALID']);
    });
  });

  describe("an upstream with a referrers API (the front's opt-in OCI 1.1 answer)", () => {
    const IN_TOTO = 'application/vnd.in-toto+json';
    let tool: SeedImage;
    let toolToken: string;
    // Descriptors only the upstream's API lists: no tag of the tag schema names them.
    const apiSig = {
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      digest: `sha256:${'5a'.repeat(32)}`,
      size: 321,
      artifactType: COSIGN_SIG_CONFIG,
    };
    const apiAtt = {
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      digest: `sha256:${'5b'.repeat(32)}`,
      size: 654,
      artifactType: IN_TOTO,
      annotations: { 'org.example.origin': 'upstream-api' },
    };
    const referrersOf = (digest: string, query = '') =>
      fetch(`${gw.url}/v2/acme/tool/referrers/${digest}${query}`, {
        headers: { authorization: `Bearer ${toolToken}` },
      });

    beforeAll(async () => {
      tool = seedImage(stack.seed, 'acme/tool', '1.0.0');
      const toolMember = await stack.member('tool', { 'acme/tool': ['1.0.0'] });
      toolToken = await stack.token(toolMember, ['repository:acme/tool:pull']);
      front.setReferrersApi(true);
      front.addReferrer('acme/tool', tool.digest, apiSig);
      front.addReferrer('acme/tool', tool.digest, apiAtt);
    });
    afterAll(() => front.setReferrersApi(false));

    it("serves the upstream's list, read from its referrers API and nothing else", async () => {
      front.resetCounts();
      const res = await referrersOf(tool.digest);
      expect([res.status, res.headers.get('content-type')]).toEqual([200, OCI_INDEX]);
      expect(res.headers.get('oci-filters-applied')).toBeNull();
      expect(await res.json()).toEqual({
        schemaVersion: 2,
        mediaType: OCI_INDEX,
        manifests: [apiSig, apiAtt],
      });
      // One referrers request; the tag schema (sha256-<hex>, .sig, .att, .sbom) is not read. The
      // other requests are the reachability check of the subject (tags, the entitled tag).
      const asked = front.requests.filter((r) => r.kind === 'referrers');
      expect(asked.map((r) => [r.repository, r.reference, r.status])).toEqual([
        ['acme/tool', tool.digest, 200],
      ]);
      expect(front.countRequests((r) => r.reference?.startsWith(artifactTag(tool.digest)) ?? false)).toBe(0);
    });

    it('still applies the artifactType filter with OCI-Filters-Applied', async () => {
      const res = await referrersOf(tool.digest, `?artifactType=${encodeURIComponent(IN_TOTO)}`);
      expect([res.status, res.headers.get('oci-filters-applied')]).toEqual([200, 'artifactType']);
      expect(((await res.json()) as { manifests: unknown[] }).manifests).toEqual([apiAtt]);
    });

    it('still answers an unreachable subject with the empty index, asking upstream nothing', async () => {
      front.resetCounts();
      for (const digest of [v100.digest, unknownSubject]) {
        const res = await referrersOf(digest);
        expect([res.status, res.headers.get('content-type')]).toEqual([200, OCI_INDEX]);
        expect(await res.json()).toEqual({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [] });
      }
      expect(front.countRequests()).toBe(0);
    });
  });
});
