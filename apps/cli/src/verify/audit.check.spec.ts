import { auditExpectations, auditRowsFrom, missingAuditEvents } from './audit.check';
import { resolveVerifyOptions } from './verify-options';
import { RowStatus } from './verify-result';
import { VerifySession } from './verify-session';
import { VerifyHttpClient } from './verify-http.client';

describe('audit expectations', () => {
  const session = new VerifySession(
    resolveVerifyOptions({
      url: 'http://127.0.0.1:9',
      username: 'verify',
      password: 'k',
      image: 'acme/app:v1.0.0',
      unentitledTag: 'v1.1.0',
    }),
    {} as VerifyHttpClient,
  );

  it('expects an event only for the rows that passed', () => {
    const results = new Map<string, RowStatus>([
      ['login', 'PASS'],
      ['entitled pull', 'FAIL'],
      ['pinned tag', 'PASS'],
      ['denial: bad credentials', 'PASS'],
      ['cache hit', 'SKIP'],
    ]);
    expect(auditExpectations(session, results).map((e) => e.label)).toEqual([
      'login',
      'pinned tag',
      'bad credentials',
    ]);
  });

  it('names what no audit row satisfies', () => {
    const expected = auditExpectations(
      session,
      new Map<string, RowStatus>([
        ['login', 'PASS'],
        ['pinned tag', 'PASS'],
        ['cache hit', 'PASS'],
      ]),
    );
    const rows = [
      { action: 'token.issue', outcome: 'allowed', reason: null },
      { action: 'manifest.get', outcome: 'denied', reference: 'v1.1.0', reason: 'tag_not_entitled' },
      { action: 'blob.get', outcome: 'allowed', repository: 'acme/app', cache: 'miss' },
    ];
    expect(missingAuditEvents(rows, expected).map((e) => e.label)).toEqual(['cache hit']);
    expect(missingAuditEvents([...rows, { ...rows[2], cache: 'hit' }], expected)).toEqual([]);
  });

  it('reads the events from an array or a wrapping object', () => {
    expect(auditRowsFrom('[{"action":"token.issue"}]')).toEqual([{ action: 'token.issue' }]);
    expect(auditRowsFrom('{"events":[],"next":null}')).toEqual([]);
    expect(auditRowsFrom('{"items":[{"action":"x"}]}')).toEqual([{ action: 'x' }]);
    expect(auditRowsFrom('{"total":3}')).toBeNull();
    expect(auditRowsFrom('<html>')).toBeNull();
  });
});
