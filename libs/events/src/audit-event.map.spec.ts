import { AuditEvent } from '@gatehouse/audit';
import { eventFromAuditRow, eventTypeOf } from './audit-event.map';

function row(fields: Partial<AuditEvent>): AuditEvent {
  return Object.assign(new AuditEvent(), {
    id: '00000000-0000-4000-8000-000000000001',
    occurredAt: new Date('2026-12-07T10:00:00Z'),
    requestId: 'r1',
    clientRequestId: null,
    memberId: '00000000-0000-4000-8000-0000000000aa',
    username: 'alice',
    clientIp: '203.0.113.7',
    userAgent: 'docker/27',
    action: 'manifest.get',
    repository: 'acme/app',
    reference: 'v1',
    digest: 'sha256:' + 'a'.repeat(64),
    outcome: 'allowed',
    reason: null,
    httpStatus: 200,
    bytes: 100,
    cache: 'hit',
    durationMs: 3,
    upstreamStatus: null,
    details: null,
    ...fields,
  });
}

describe('the event of an audit row', () => {
  it.each([
    [{ action: 'manifest.get' }, 'pull.manifest'],
    [{ action: 'manifest.get', httpStatus: 304 }, 'pull.checked'],
    [{ action: 'manifest.head' }, 'pull.checked'],
    [{ action: 'manifest.head', reference: 'sha256:' + 'a'.repeat(64) }, null],
    [{ action: 'blob.get' }, null],
    [{ action: 'blob.head' }, null],
    [{ action: 'tags.list' }, null],
    [{ action: 'download', repository: 'releases:acme/tool', reference: 'v1/tool.tgz' }, 'download.file'],
    [
      { action: 'manifest.get', outcome: 'denied', reason: 'tag_not_entitled', httpStatus: 404 },
      'access.refused',
    ],
    [{ action: 'blob.get', outcome: 'denied', reason: 'rate_limited', httpStatus: 429 }, 'limit.hit'],
    [{ action: 'token.refuse', outcome: 'denied', reason: 'rate_limited' }, 'limit.hit'],
    [{ action: 'token.refuse', outcome: 'denied', reason: 'bad_credentials' }, 'login.refused'],
    [{ action: 'token.issue' }, 'login.issued'],
    [
      { action: 'manifest.get', outcome: 'error', reason: 'upstream_unavailable', httpStatus: 503 },
      'upstream.failed',
    ],
    [{ action: 'blob.get', outcome: 'error', upstreamStatus: 500, httpStatus: 502 }, 'upstream.failed'],
    [{ action: 'blob.get', outcome: 'error', reason: 'client_aborted', httpStatus: 499 }, null],
    [{ action: 'admin.entitlement.grant' }, 'entitlement.granted'],
    [{ action: 'cli.entitlement.revoke' }, 'entitlement.revoked'],
    [{ action: 'admin.member.disable' }, 'member.disabled'],
    [{ action: 'cli.key.create' }, 'key.created'],
    [{ action: 'admin.webhook.add' }, null],
    [{ action: 'admin.auth.refuse', outcome: 'denied' }, null],
  ] as Array<[Partial<AuditEvent>, string | null]>)('%j is %s', (fields, type) => {
    expect(eventTypeOf(row(fields))).toBe(type);
  });

  it('is a CloudEvent with the audit row id, the member as subject, and the pull key of member, repository and tag', () => {
    const d = eventFromAuditRow(
      row({ action: 'manifest.get', reference: 'sha256:' + 'b'.repeat(64), details: { viaTag: 'v2' } }),
      'registry.example.com',
    )!;
    expect(d.event).toMatchObject({
      specversion: '1.0',
      id: '00000000-0000-4000-8000-000000000001',
      source: 'registry.example.com',
      type: 'pull.manifest',
      subject: 'alice',
      time: '2026-12-07T10:00:00.000Z',
      datacontenttype: 'application/json',
      data: { repository: 'acme/app', tag: 'v2', member: { username: 'alice' } },
    });
    expect(d.pullKey).toBe('00000000-0000-4000-8000-0000000000aa\nacme/app\nv2');
  });

  it('carries only named details of a change, never others (no secret slips through)', () => {
    const d = eventFromAuditRow(
      row({
        action: 'admin.key.create',
        details: { actor: 'admin_token', accessKeyPrefix: 'gh_ab', key: 'gh_secret', token: 'x', name: 'ci' },
      }),
      's',
    )!;
    expect(d.event.data).toMatchObject({ actor: 'admin_token', accessKeyPrefix: 'gh_ab', name: 'ci' });
    expect(JSON.stringify(d.event)).not.toMatch(/gh_secret|"token"/);
  });

  it('names the CLI as the actor of a cli.* change', () => {
    expect(
      eventFromAuditRow(row({ action: 'cli.member.create', details: null }), 's')!.event.data.actor,
    ).toBe('cli');
  });
});
