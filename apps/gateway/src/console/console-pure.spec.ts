import type { FastifyRequest } from 'fastify';
import type { AuditEvent } from '@gatehouse/audit';
import { everyDay } from './console-analytics.controller';
import { auditTable } from './console-audit-table';
import { carriesCsrfToken } from './console.guard';
import { findRequestId } from './console-explain.controller';
import { cacheUse } from './console-health.controller';
import { previewRules } from './console-grant.controller';
import { esc } from './console-html';
import { isCrossSite } from './console-http';
import { claimGroups, roleForGroups } from './console-oidc.service';
import type { StaffSession } from './console-session.store';

const req = (headers: Record<string, string>, body?: unknown) =>
  ({ headers: { host: 'registry.example.com', ...headers }, body }) as unknown as FastifyRequest;

describe('console building blocks', () => {
  it("shows a row's client request id and a mirror's member tag under the request id, escaped", () => {
    const row = {
      occurredAt: new Date('2026-01-01T00:00:00Z'),
      action: 'download',
      username: 'site-b',
      repository: 'releases:acme/tool',
      reference: 'v1/x',
      outcome: 'allowed',
      reason: null,
      httpStatus: 200,
      userAgent: 'gatehouse',
      requestId: 'r-1',
      clientRequestId: 'b-<1>',
      clientMemberTag: 'm1-0123',
    } as unknown as AuditEvent;
    const html = auditTable([row], 'rows');
    expect(html).toContain('client request <code>b-&#60;1&#62;</code>');
    expect(html).toContain('member tag <code>m1-0123</code>');
    const plain = auditTable([{ ...row, clientRequestId: null, clientMemberTag: null }], 'rows');
    expect(plain).not.toContain('member tag');
    expect(plain).toContain('<td><code>r-1</code></td>');
  });

  it('escapes every character that could end HTML text or a quoted attribute', () => {
    expect(esc(`<img src=x onerror="a('b')">&`)).toBe(
      '&#60;img src=x onerror=&#34;a(&#39;b&#39;)&#34;&#62;&#38;',
    );
    expect(esc(null)).toBe('');
  });

  it('gives admin over support, and no role without a mapped group', () => {
    const mapping = { admin: ['ops'], support: ['help'] };
    expect(roleForGroups(['help', 'ops'], mapping)).toBe('admin');
    expect(roleForGroups(['help'], mapping)).toBe('support');
    expect(roleForGroups(['Ops', 'sales'], mapping)).toBeNull();
  });

  it('reads groups claims as arrays, single names or space-separated lists', () => {
    expect(claimGroups(['a', 3, 'b'])).toEqual(['a', 'b']);
    expect(claimGroups('a b,c')).toEqual(['a', 'b', 'c']);
    expect(claimGroups(undefined)).toEqual([]);
  });

  it('finds the request id in pasted error text', () => {
    expect(findRequestId('denied (request id 5F0C1A2B-0000-4000-8000-00000000ABCD)')).toBe(
      '5f0c1a2b-0000-4000-8000-00000000abcd',
    );
    expect(findRequestId('no id here')).toBeNull();
  });

  it('tells cross-site requests by Sec-Fetch-Site, else by Origin', () => {
    expect(isCrossSite(req({ 'sec-fetch-site': 'cross-site' }))).toBe(true);
    expect(isCrossSite(req({ 'sec-fetch-site': 'same-site' }))).toBe(true);
    expect(isCrossSite(req({ 'sec-fetch-site': 'same-origin' }))).toBe(false);
    expect(isCrossSite(req({ origin: 'https://evil.example' }))).toBe(true);
    expect(isCrossSite(req({ origin: 'null' }))).toBe(true);
    expect(isCrossSite(req({ origin: 'https://registry.example.com' }))).toBe(false);
    expect(isCrossSite(req({}))).toBe(false);
  });

  it('accepts only the session’s own CSRF token, from the form or the header', () => {
    const session = { csrfToken: 'right-token' } as StaffSession;
    expect(carriesCsrfToken(req({}, { _csrf: 'right-token' }), session)).toBe(true);
    expect(carriesCsrfToken(req({ 'x-csrf-token': 'right-token' }), session)).toBe(true);
    expect(carriesCsrfToken(req({}, { _csrf: 'wrong' }), session)).toBe(false);
    expect(carriesCsrfToken(req({}, { _csrf: ['right-token'] }), session)).toBe(false);
    expect(carriesCsrfToken(req({}), session)).toBe(false);
  });

  it('previews what proposed rules admit, start and stop admitting, by the one matcher', () => {
    const how = { caseInsensitive: true };
    const tags = ['v1.0.0', 'v1.1.0', 'v2.0.0', 'latest'];
    expect(previewRules(tags, ['semver:>=1.1.0'], ['v1.*'], how)).toEqual({
      tags,
      admitted: ['v1.1.0', 'v2.0.0'],
      starts: ['v2.0.0'],
      stops: ['v1.0.0'],
    });
    expect(previewRules(null, ['*'], null, how)).toEqual({ tags: null, admitted: [], stops: [], starts: [] });
  });

  it('previews package versions in lowercase and release tags case-sensitively, as downloads judge them', () => {
    const versions = ['2.0.0', '1.5.0-RC1', '1.4.0'];
    const packages = { caseInsensitive: true };
    expect(previewRules(versions, ['1.5.0-rc1', '1.4.*'], ['2.0.0'], packages)).toEqual({
      tags: versions,
      admitted: ['1.5.0-RC1', '1.4.0'],
      starts: ['1.5.0-RC1', '1.4.0'],
      stops: ['2.0.0'],
    });
    const releases = { caseInsensitive: false };
    expect(previewRules(['V1.0.0', 'v1.0.0'], ['v1.0.0'], null, releases).admitted).toEqual(['v1.0.0']);
  });
});

describe('the analytics chart axis', () => {
  it('covers every day of the window, zeros where nothing happened', () => {
    const day = { day: '2026-03-30', pulls: 2, downloads: 1, bytes: 5, cacheHits: 0, cacheLookups: 0 };
    const out = everyDay([day], 3, new Date('2026-03-31T08:00:00Z'));
    expect(out.map((d) => [d.day, d.pulls])).toEqual([
      ['2026-03-29', 0],
      ['2026-03-30', 2],
      ['2026-03-31', 0],
    ]);
  });
});

describe("the health page's cache line", () => {
  it('says what the cache holds against its cap, and what eviction removed', () => {
    const stats = { blobs: 3, bytes: 750 * 1024 * 1024, maxBytes: 1024 ** 3, evictions: 2, writeFailures: 0 };
    expect(cacheUse(stats)).toBe(
      'This replica’s cache holds 3 blobs, 750MB of 1GB (73 %); 2 evicted since it started.',
    );
    expect(cacheUse({ ...stats, blobs: 1, bytes: 0, maxBytes: 0, evictions: 0 })).toBe(
      'This replica’s cache holds 1 blob, 0B (no cap); 0 evicted since it started.',
    );
  });
});
