import { Readable } from 'node:stream';
import type { AuditEventInput, AuditService } from '@gatehouse/audit';
import type { RegistryAccess } from '@gatehouse/auth';
import type { GatewayConfig } from '@gatehouse/config';
import type { Entitlement, EntitlementService } from '@gatehouse/entitlements';
import { Digest, OciError, parseRegistryUrl } from '@gatehouse/oci';
import type {
  BlobSource,
  ManifestSource,
  PullThroughService,
  ReferrersSource,
} from '@gatehouse/pull-through';
import { ReferrersService } from './referrers.service';
import { RegistryAudit } from './registry-audit';
import { RegistryService } from './registry.service';
import type { RegistryRequest } from './registry.types';

const D = (c: string) => `sha256:${c.repeat(64)}` as Digest;
const MANIFEST = D('a');
const LAYER = D('b');

type Fake<T, K extends keyof T> = jest.Mocked<Pick<T, K>>;

/** Typed fakes of every edge RegistryService reaches (immich's newTestService shape). */
function newRegistryService() {
  const entitlements: Fake<
    EntitlementService,
    'admitTag' | 'findReachingTag' | 'expiryWarning' | 'keyExpiryWarning'
  > = {
    admitTag: jest.fn(),
    findReachingTag: jest.fn(),
    expiryWarning: jest.fn().mockReturnValue(null),
    keyExpiryWarning: jest.fn().mockReturnValue(null),
  };
  const pull: Fake<PullThroughService, 'resolveTag' | 'listTags' | 'findReachingTag'> = {
    resolveTag: jest.fn(),
    listTags: jest.fn(),
    findReachingTag: jest.fn(),
  };
  const manifests: Fake<ManifestSource, 'get'> = { get: jest.fn() };
  const blobs: Fake<BlobSource, 'head' | 'open'> = { head: jest.fn(), open: jest.fn() };
  const referrers: Fake<ReferrersSource, 'list'> = { list: jest.fn() };
  const events: AuditEventInput[] = [];
  const audit = new RegistryAudit({
    record: (e: AuditEventInput) => events.push(e),
  } as unknown as AuditService);
  const config = { cache: { offload: null } } as unknown as GatewayConfig;
  const sut = new RegistryService(
    entitlements as unknown as EntitlementService,
    pull as unknown as PullThroughService,
    manifests as unknown as ManifestSource,
    blobs as unknown as BlobSource,
    audit,
    new ReferrersService(
      entitlements as unknown as EntitlementService,
      pull as unknown as PullThroughService,
      referrers as unknown as ReferrersSource,
    ),
    config,
    { visible: () => Promise.resolve(null) },
  );
  return { sut, entitlements, pull, manifests, blobs, referrers, events };
}

const entitlement = { repository: 'acme/app', tagRules: ['v1.*'], kind: 'image' } as Entitlement;

function access(path: string, granted: Entitlement | null = entitlement): RegistryAccess {
  const route = parseRegistryUrl(path);
  if (!route) throw new Error(`bad test path ${path}`);
  return {
    route,
    principal: {
      memberId: 'm1',
      username: 'alice',
      accessKeyId: 'k1',
      accessKey: { prefix: 'ghk_abcdefgh', expiresAt: null },
      access: [],
      tokenId: 't1',
      requiredScopeGranted: true,
    },
    entitlement: granted,
    entitlements: granted ? [granted] : [],
  };
}

function request(extra: Partial<RegistryRequest> = {}): RegistryRequest {
  return { method: 'GET', query: {}, signal: new AbortController().signal, ...extra };
}

const manifestReply = {
  source: 'hit' as const,
  digest: MANIFEST,
  mediaType: 'application/json',
  size: 2,
  body: Buffer.from('{}'),
};

describe('RegistryService', () => {
  it('refuses an unentitled repository as unknown, asks nothing upstream and audits the true reason', async () => {
    const { sut, pull, manifests, events } = newRegistryService();
    await expect(sut.handle(access('/v2/acme/app/manifests/v1.0.0', null), request())).rejects.toMatchObject({
      code: 'NAME_UNKNOWN',
    });
    expect(pull.resolveTag).not.toHaveBeenCalled();
    expect(manifests.get).not.toHaveBeenCalled();
    expect(events).toMatchObject([
      { action: 'manifest.get', outcome: 'denied', reason: 'repository_not_entitled', httpStatus: 404 },
    ]);
  });

  it('refuses a tag no rule admits before resolving it upstream', async () => {
    const { sut, entitlements, pull, events } = newRegistryService();
    entitlements.admitTag.mockResolvedValue(null);
    const err = await sut.handle(access('/v2/acme/app/manifests/v2.0.0'), request()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OciError);
    expect(err).toMatchObject({ code: 'MANIFEST_UNKNOWN', reason: 'tag_not_entitled' });
    expect(pull.resolveTag).not.toHaveBeenCalled();
    expect(events[0]).toMatchObject({ outcome: 'denied', reason: 'tag_not_entitled', reference: 'v2.0.0' });
  });

  it('serves an admitted tag in the form it was judged, with digest, ETag and a stale warning', async () => {
    const { sut, entitlements, pull, manifests, events } = newRegistryService();
    entitlements.admitTag.mockResolvedValue({
      via: 'rule',
      tag: 'v1.0.0',
      match: { rule: 'v1.*', kind: 'glob', tag: 'v1.0.0' },
    });
    pull.resolveTag.mockResolvedValue({ digest: MANIFEST, stale: { ageSeconds: 42, cause: null } });
    manifests.get.mockResolvedValue(manifestReply);
    const reply = await sut.handle(access('/v2/acme/app/manifests/V1.0.0'), request());
    expect(pull.resolveTag).toHaveBeenCalledWith('acme/app', 'v1.0.0', expect.anything());
    expect(reply).toMatchObject({
      status: 200,
      headers: { 'Docker-Content-Digest': MANIFEST, ETag: `"${MANIFEST}"`, 'Content-Length': '2' },
      body: manifestReply.body,
    });
    expect(reply.headers.Warning).toMatch(/^299 - .*checked 42 s ago/);
    expect(events[0]).toMatchObject({ outcome: 'allowed', digest: MANIFEST, cache: 'hit', bytes: 2 });
  });

  it('says on the manifest when the entitlement and the key expire soon, one line each beside a stale warning', async () => {
    const { sut, entitlements, pull, manifests } = newRegistryService();
    entitlements.admitTag.mockResolvedValue({
      via: 'rule',
      tag: 'v1.0.0',
      match: { rule: 'v1.*', kind: 'glob', tag: 'v1.0.0' },
    });
    entitlements.expiryWarning.mockReturnValue(
      '299 - "your access to acme/app expires on 2026-12-12T00:00:00Z"',
    );
    entitlements.keyExpiryWarning.mockReturnValue(
      '299 - "your access key ghk_abcdefgh expires on 2026-12-13T00:00:00Z"',
    );
    pull.resolveTag.mockResolvedValue({ digest: MANIFEST, stale: { ageSeconds: 42, cause: null } });
    manifests.get.mockResolvedValue(manifestReply);
    const reply = await sut.handle(access('/v2/acme/app/manifests/v1.0.0'), request());
    expect(reply.headers.Warning).toEqual([
      expect.stringMatching(/^299 - ".*checked 42 s ago"$/),
      '299 - "your access to acme/app expires on 2026-12-12T00:00:00Z"',
      '299 - "your access key ghk_abcdefgh expires on 2026-12-13T00:00:00Z"',
    ]);
    expect(entitlements.keyExpiryWarning).toHaveBeenCalledWith({ prefix: 'ghk_abcdefgh', expiresAt: null });
  });

  it('answers 304 to a matching If-None-Match and HEAD without a body', async () => {
    const { sut, entitlements, manifests } = newRegistryService();
    entitlements.findReachingTag.mockResolvedValue({ tag: 'v1.0.0', size: 2 });
    manifests.get.mockResolvedValue(manifestReply);
    const path = `/v2/acme/app/manifests/${MANIFEST}`;
    expect(await sut.handle(access(path), request({ ifNoneMatch: `W/"${MANIFEST}"` }))).toMatchObject({
      status: 304,
    });
    const head = await sut.handle(access(path), request({ method: 'HEAD' }));
    expect(head.status).toBe(200);
    expect(head.body).toBeUndefined();
  });

  it('refuses a blob not reachable from an admitted tag without opening it', async () => {
    const { sut, entitlements, blobs, events } = newRegistryService();
    entitlements.findReachingTag.mockResolvedValue(null);
    await expect(sut.handle(access(`/v2/acme/app/blobs/${LAYER}`), request())).rejects.toMatchObject({
      code: 'BLOB_UNKNOWN',
    });
    expect(blobs.open).not.toHaveBeenCalled();
    expect(events[0]).toMatchObject({ action: 'blob.get', reason: 'digest_not_reachable', digest: LAYER });
  });

  it('streams a range of a reachable blob and audits the bytes handed over when the stream ends', async () => {
    const { sut, entitlements, blobs, events } = newRegistryService();
    entitlements.findReachingTag.mockResolvedValue({ tag: 'v1.0.0', size: 10 });
    blobs.open.mockResolvedValue({
      source: 'hit',
      size: 10,
      length: 4,
      contentRange: 'bytes 2-5/10',
      body: Readable.from([Buffer.from('abcd')]),
    });
    const reply = await sut.handle(access(`/v2/acme/app/blobs/${LAYER}`), request({ range: 'bytes=2-5' }));
    expect(blobs.open).toHaveBeenCalledWith(
      'acme/app',
      LAYER,
      expect.objectContaining({ range: 'bytes=2-5', declaredSize: 10 }),
    );
    expect(reply).toMatchObject({
      status: 206,
      headers: { 'Content-Range': 'bytes 2-5/10', 'Content-Length': '4', 'Accept-Ranges': 'bytes' },
    });
    expect(events).toEqual([]);
    const chunks: Buffer[] = [];
    for await (const c of reply.body as Readable) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).toString()).toBe('abcd');
    await new Promise((r) => setImmediate(r));
    expect(events).toMatchObject([{ action: 'blob.get', outcome: 'allowed', httpStatus: 206, bytes: 4 }]);
  });

  it('lists only admitted tags, sorted, a page at a time', async () => {
    const { sut, entitlements, pull } = newRegistryService();
    pull.listTags.mockResolvedValue({ tags: ['v2.0.0', 'v1.1.0', 'v1.0.0', 'latest'] });
    entitlements.admitTag.mockImplementation(async (_e, tag) =>
      tag.startsWith('v1.') ? { via: 'rule', tag, match: { rule: 'v1.*', kind: 'glob', tag } } : null,
    );
    const reply = await sut.handle(access('/v2/acme/app/tags/list'), request({ query: { n: '1' } }));
    expect(reply.body).toEqual({ name: 'acme/app', tags: ['v1.0.0'] });
    expect(reply.headers.Link).toBe('</v2/acme/app/tags/list?n=1&last=v1.0.0>; rel="next"');
    await expect(
      sut.handle(access('/v2/acme/app/tags/list'), request({ query: { n: '-1' } })),
    ).rejects.toMatchObject({ code: 'PAGINATION_NUMBER_INVALID' });
  });

  it('lists the catalog from the entitlements the pipeline loaded', async () => {
    const { sut } = newRegistryService();
    const reply = await sut.handle(access('/v2/_catalog'), request());
    expect(reply.body).toEqual({ repositories: ['acme/app'] });
  });

  it('answers the same empty referrers index for an unreachable subject, without asking upstream', async () => {
    const { sut, entitlements, referrers, events } = newRegistryService();
    entitlements.findReachingTag.mockResolvedValue(null);
    const reply = await sut.handle(access(`/v2/acme/app/referrers/${MANIFEST}`), request());
    expect(reply.status).toBe(200);
    expect(JSON.parse(String(reply.body))).toMatchObject({ schemaVersion: 2, manifests: [] });
    expect(referrers.list).not.toHaveBeenCalled();
    expect(events[0]).toMatchObject({
      action: 'referrers.list',
      details: { reason: 'subject_not_reachable' },
    });
  });
});
