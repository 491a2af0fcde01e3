import { randomUUID } from 'node:crypto';
import { AuditService } from '@gatehouse/audit';
import { createTestGateway, TestGateway } from '@gatehouse/testing/gateway';
// The CLI and the admin API must tell the same story about the same database.
import { runCli } from '../../../cli/src/cli';
import { captureIo } from '../../../cli/src/test/capture-io';

/** Response bodies as JSON.parse returns them; each test states the shape it expects. */
type Json = ReturnType<typeof JSON.parse>;

const ADMIN_TOKEN = 'adm_' + 'x'.repeat(20) + randomUUID().replace(/-/g, '');

/** The admin REST API through the real gateway and PostgreSQL. */
describe('admin API', () => {
  let gw: TestGateway;

  async function api(
    method: string,
    path: string,
    body?: unknown,
    token: string | null = ADMIN_TOKEN,
  ): Promise<{ status: number; body: Json; headers: Headers }> {
    const res = await fetch(`${gw.url}${path}`, {
      method,
      headers: {
        ...(token !== null ? { authorization: `Bearer ${token}` } : {}),
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined, headers: res.headers };
  }

  async function cli(...args: string[]): Promise<Json> {
    const io = captureIo();
    const code = await runCli(args, io, { DATABASE_URL: gw.databaseUrl, DATA_DIR: gw.dataDir });
    expect({ code, err: io.err() }).toEqual({ code: 0, err: '' });
    return JSON.parse(io.out());
  }

  async function auditRows(query: string) {
    await gw.app.get(AuditService).flush(10_000);
    const res = await api('GET', `/admin/audit?${query}`);
    expect(res.status).toBe(200);
    return res.body.items as Array<Record<string, Json>>;
  }

  beforeAll(async () => {
    gw = await createTestGateway({ env: { ADMIN_TOKEN } });
  });
  afterAll(() => gw?.close());

  describe('authentication', () => {
    it('refuses a missing token, a wrong token and a member registry token with 401', async () => {
      await api('POST', '/admin/members', { username: 'tokenowner' });
      const key = (await api('POST', '/admin/members/tokenowner/keys', {})).body.key as string;
      const tokenRes = await fetch(`${gw.url}/auth/token?service=${gw.host}`, {
        headers: { authorization: 'Basic ' + Buffer.from(`tokenowner:${key}`).toString('base64') },
      });
      const memberToken = ((await tokenRes.json()) as { token: string }).token;

      for (const token of [null, 'wrong', ADMIN_TOKEN + 'x', memberToken, key]) {
        const res = await api('GET', '/admin/members', undefined, token);
        expect(res.status).toBe(401);
        expect(res.body).toEqual({
          statusCode: 401,
          error: 'Unauthorized',
          message: ['the admin API needs `Authorization: Bearer <ADMIN_TOKEN>`'],
        });
        expect(res.headers.get('www-authenticate')).toBe('Bearer realm="gatehouse-admin"');
      }
      // Basic with the admin token as password is not the admin scheme either.
      const basic = await fetch(`${gw.url}/admin/members`, {
        headers: { authorization: 'Basic ' + Buffer.from(`admin:${ADMIN_TOKEN}`).toString('base64') },
      });
      expect(basic.status).toBe(401);

      const refusals = await auditRows('action=admin.auth.refuse&limit=100');
      expect(refusals.map((r) => r.reason).sort()).toEqual([
        'admin_token_invalid',
        'admin_token_invalid',
        'admin_token_invalid',
        'admin_token_invalid',
        'admin_token_missing',
        'admin_token_missing',
      ]);
      expect(gw.rawLogs()).not.toContain(ADMIN_TOKEN);
    });

    it('is absent (404) when ADMIN_TOKEN is not set', async () => {
      const off = await createTestGateway();
      try {
        for (const path of ['/admin/members', '/admin/openapi.json']) {
          const res = await fetch(`${off.url}${path}`, {
            headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
          });
          expect(res.status).toBe(404);
          expect(await res.json()).toEqual({
            statusCode: 404,
            error: 'Not Found',
            message: ['the admin API is disabled: the operator must set ADMIN_TOKEN to enable it'],
          });
        }
      } finally {
        await off.close();
      }
    });
  });

  describe('members and keys', () => {
    it('creates, lists, shows, disables and enables members, with audit rows', async () => {
      const created = await api('POST', '/admin/members', { username: 'Alice', note: 'Acme Corp' });
      expect(created.status).toBe(201);
      expect(created.body).toMatchObject({ username: 'alice', status: 'active', note: 'Acme Corp' });
      expect((await api('POST', '/admin/members', { username: 'alice' })).status).toBe(409);

      const list = await api('GET', '/admin/members');
      expect(list.body.items.map((m: { username: string }) => m.username)).toContain('alice');

      expect((await api('POST', '/admin/members/alice/disable')).body).toMatchObject({ status: 'disabled' });
      expect((await api('POST', '/admin/members/ALICE/enable')).body).toMatchObject({
        status: 'active',
        disabledAt: null,
      });
      const shown = await api('GET', '/admin/members/alice');
      expect(shown.body).toMatchObject({ username: 'alice', accessKeys: [], entitlements: [] });
      expect((await api('GET', '/admin/members/nobody')).status).toBe(404);

      const rows = await auditRows('member=alice&limit=10');
      expect(rows.map((r) => r.action)).toEqual([
        'admin.member.enable',
        'admin.member.disable',
        'admin.member.create',
      ]);
      expect(rows[2]).toMatchObject({
        outcome: 'allowed',
        memberId: created.body.id,
        details: { actor: 'admin_token' },
      });
    });

    it('answers bad input with 400 {statusCode, error, message[]}', async () => {
      const missing = await api('POST', '/admin/members', {});
      expect(missing.status).toBe(400);
      expect(missing.body).toMatchObject({ statusCode: 400, error: 'Bad Request' });
      expect(missing.body.message).toEqual(expect.arrayContaining([expect.stringMatching(/username/)]));

      const extra = await api('POST', '/admin/members', { username: 'carol', admin: true });
      expect(extra.status).toBe(400);
      expect(extra.body.message).toEqual(['property admin should not exist']);

      const invalid = await api('POST', '/admin/members', { username: 'bad name' });
      expect(invalid).toMatchObject({ status: 400, body: { code: 'username_invalid' } });
      expect(invalid.body.message[0]).toMatch(/not a valid username/);

      await api('POST', '/admin/members', { username: 'keyless' });
      const badExpiry = await api('POST', '/admin/members/keyless/keys', { expires: 'tomorrowish' });
      expect(badExpiry).toMatchObject({
        status: 400,
        body: { error: 'Bad Request', code: 'expiry_invalid' },
      });
    });

    it('creates a key whose secret is shown once, lists it without the secret, and revokes it', async () => {
      await api('POST', '/admin/members', { username: 'bob' });
      const created = await api('POST', '/admin/members/bob/keys', { name: 'ci', expires: '30d' });
      expect(created.status).toBe(201);
      expect(created.body.key).toMatch(/^ghk_[A-Za-z0-9_-]{43}$/);
      expect(created.body).toMatchObject({ member: 'bob', name: 'ci', status: 'active' });
      expect(created.body.prefix).toBe(created.body.key.slice(0, 12));

      const list = await api('GET', '/admin/keys?member=bob');
      expect(list.body.items).toEqual([expect.objectContaining({ id: created.body.id, status: 'active' })]);
      expect(JSON.stringify(list.body)).not.toContain(created.body.key);
      expect(JSON.stringify((await api('GET', '/admin/members/bob')).body)).not.toContain(created.body.key);

      const revoked = await api('POST', `/admin/keys/${created.body.prefix}/revoke`);
      expect(revoked).toMatchObject({ status: 200, body: { status: 'revoked' } });
      expect((await api('POST', '/admin/keys/ghk_nope/revoke')).status).toBe(404);

      const rows = await auditRows('member=bob&action=admin.key.create');
      expect(rows[0].details).toMatchObject({
        accessKeyId: created.body.id,
        accessKeyPrefix: created.body.prefix,
      });
      const stored = JSON.stringify(await auditRows('member=bob&limit=50'));
      expect(stored).not.toContain(created.body.key);
      expect(gw.rawLogs()).not.toContain(created.body.key);
    });
  });

  describe('entitlements and explain', () => {
    it('grants, lists with filters, replaces and revokes; bad rules are 400', async () => {
      await api('POST', '/admin/members', { username: 'dave' });
      const granted = await api('POST', '/admin/entitlements', {
        member: 'dave',
        repository: 'acme/app',
        tags: ['v1.*', 'semver:>=2.0.0 <3.0.0'],
        note: 'trial',
      });
      expect(granted.status).toBe(201);
      expect(granted.body).toMatchObject({
        member: 'dave',
        repository: 'acme/app',
        live: true,
        created: true,
      });
      const replaced = await api('POST', '/admin/entitlements', {
        member: 'dave',
        repository: 'acme/app',
        tags: ['*'],
      });
      expect(replaced).toMatchObject({ status: 200, body: { tagRules: ['*'], created: false } });
      await api('POST', '/admin/entitlements', { member: 'dave', repository: 'acme/tool', tags: ['1.0.0'] });

      const mine = await api('GET', '/admin/entitlements?member=dave');
      expect(mine.body.items.map((e: { repository: string }) => e.repository)).toEqual([
        'acme/app',
        'acme/tool',
      ]);
      const byRepo = await api('GET', '/admin/entitlements?member=dave&repository=acme/tool&status=live');
      expect(byRepo.body.items).toHaveLength(1);
      expect((await api('GET', '/admin/entitlements?member=dave&status=expired')).body.items).toEqual([]);

      expect(
        (await api('POST', '/admin/entitlements', { member: 'dave', repository: 'acme/app', tags: [] }))
          .status,
      ).toBe(400);
      const badRule = await api('POST', '/admin/entitlements', {
        member: 'dave',
        repository: 'acme/app',
        tags: ['!v1'],
      });
      expect(badRule).toMatchObject({ status: 400, body: { code: 'tag_rule_invalid' } });
      const badRepo = await api('POST', '/admin/entitlements', {
        member: 'dave',
        repository: 'Acme/App',
        tags: ['*'],
      });
      expect(badRepo).toMatchObject({ status: 400, body: { code: 'repository_invalid' } });
      expect((await api('GET', '/admin/entitlements?status=maybe')).status).toBe(400);

      const revoked = await api('POST', '/admin/entitlements/revoke', {
        member: 'dave',
        repository: 'acme/tool',
      });
      expect(revoked).toMatchObject({ status: 200, body: { repository: 'acme/tool', revoked: true } });
      expect(
        (await api('POST', '/admin/entitlements/revoke', { member: 'dave', repository: 'acme/tool' })).status,
      ).toBe(404);

      const rows = await auditRows('member=dave&action=admin.entitlement.grant');
      expect(rows).toHaveLength(3);
      expect(rows[2]).toMatchObject({ repository: 'acme/app', httpStatus: 201 });
    });

    it('explains verdicts: entitled, tag not entitled, not entitled, expired, disabled, no key, unknown', async () => {
      await api('POST', '/admin/members', { username: 'erin' });
      await api('POST', '/admin/members/erin/keys', {});
      await api('POST', '/admin/entitlements', { member: 'erin', repository: 'acme/app', tags: ['v1.0.0'] });
      const explain = async (member: string, image: string) =>
        (await api('GET', `/admin/explain?member=${member}&image=${encodeURIComponent(image)}`)).body;

      expect(await explain('erin', 'acme/app:v1.0.0')).toMatchObject({
        allowed: true,
        reason: null,
        matchedRule: 'v1.0.0',
        accessKeys: { active: 1, revoked: 0, expired: 0 },
      });
      expect(await explain('erin', 'acme/app:v1.1.0')).toMatchObject({
        allowed: false,
        reason: 'tag_not_entitled',
      });
      expect(await explain('erin', 'acme/big:1.0')).toMatchObject({
        allowed: false,
        reason: 'repository_not_entitled',
        entitlement: null,
      });
      expect(await explain('nobody', 'acme/app:v1.0.0')).toMatchObject({
        allowed: false,
        reason: 'member_unknown',
      });

      await api('POST', '/admin/members/erin/disable');
      expect(await explain('erin', 'acme/app:v1.0.0')).toMatchObject({ reason: 'member_disabled' });
      await api('POST', '/admin/members/erin/enable');

      const keyId = (await api('GET', '/admin/keys?member=erin')).body.items[0].id;
      await api('POST', `/admin/keys/${keyId}/revoke`);
      expect(await explain('erin', 'acme/app:v1.0.0')).toMatchObject({
        reason: 'key_revoked',
        accessKeys: { active: 0, revoked: 1 },
      });

      const bad = await api('GET', '/admin/explain?member=erin&image=acme/app:bad%20tag');
      expect(bad.status).toBe(400);
      expect((await api('GET', '/admin/explain?member=erin')).status).toBe(400);
    });
  });

  describe('audit', () => {
    it('pages through events newest first with a cursor, with the same filters as the CLI', async () => {
      const audit = gw.app.get(AuditService);
      const at = new Date('2026-01-01T12:00:00.000Z');
      // Seven events in one millisecond and three later ones: the cursor must not skip or repeat.
      for (let i = 0; i < 10; i++) {
        audit.record({
          action: 'manifest.get',
          outcome: i % 2 ? 'denied' : 'allowed',
          reason: i % 2 ? 'tag_not_entitled' : null,
          username: 'pager',
          repository: 'acme/app',
          clientIp: i < 5 ? '10.1.1.1' : '10.2.2.2',
          requestId: `page-${i}`,
          clientRequestId: `mirror-${i}`,
          occurredAt: new Date(at.getTime() + Math.max(0, i - 6) * 1000),
        });
      }
      await audit.flush(10_000);

      const seen: string[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const res = await api('GET', `/admin/audit?member=pager&limit=3${cursor ? `&cursor=${cursor}` : ''}`);
        expect(res.status).toBe(200);
        seen.push(...res.body.items.map((e: { requestId: string }) => e.requestId));
        cursor = res.body.nextCursor;
        pages += 1;
      } while (cursor && pages < 10);
      expect(pages).toBe(4);
      expect(seen).toHaveLength(10);
      expect(new Set(seen).size).toBe(10);
      expect(seen.slice(0, 3)).toEqual(['page-9', 'page-8', 'page-7']);

      const denied = await api('GET', '/admin/audit?member=pager&outcome=denied&reason=tag_not_entitled');
      expect(denied.body.items).toHaveLength(5);
      const byIp = await api('GET', '/admin/audit?member=pager&ip=10.1.1.1');
      expect(byIp.body.items.map((e: { requestId: string }) => e.requestId).sort()).toEqual([
        'page-0',
        'page-1',
        'page-2',
        'page-3',
        'page-4',
      ]);
      const window = await api(
        'GET',
        `/admin/audit?member=pager&since=${encodeURIComponent('2026-01-01T12:00:01Z')}&until=${encodeURIComponent('2026-01-01T12:00:03Z')}`,
      );
      expect(window.body.items.map((e: { requestId: string }) => e.requestId)).toEqual(['page-8', 'page-7']);
      expect((await api('GET', '/admin/audit?requestId=page-4')).body.items).toHaveLength(1);
      const byClientId = await api('GET', '/admin/audit?clientRequestId=mirror-4');
      expect(byClientId.body.items.map((e: { requestId: string }) => e.requestId)).toEqual(['page-4']);

      for (const bad of [
        'limit=0',
        'limit=abc',
        'outcome=maybe',
        'ip=not-an-ip',
        'since=yesterdayish',
        'since=99999999999999d',
        'until=99999999999999d',
        'since=0000-01-01',
        'cursor=%2A%2A',
      ]) {
        const res = await api('GET', `/admin/audit?${bad}`);
        expect({ bad, status: res.status, error: res.body.error }).toEqual({
          bad,
          status: 400,
          error: 'Bad Request',
        });
      }
      // A time the database cannot store is the caller's mistake, told in the admin shape.
      const huge = await api('GET', '/admin/audit?until=99999999999999d');
      expect(huge.body).toEqual({
        statusCode: 400,
        error: 'Bad Request',
        message: [expect.stringMatching(/"99999999999999d" is out of range/)],
      });
    });
  });

  describe('agreement with the CLI', () => {
    it('shows the same members and entitlements as `gatehouse member list` and `gatehouse entitlements`', async () => {
      await api('POST', '/admin/members', { username: 'frank', note: 'via API' });
      await api('POST', '/admin/entitlements', { member: 'frank', repository: 'acme/app', tags: ['v1.*'] });
      const viaCli = JSON.parse(
        JSON.stringify(await cli('grant', 'frank', 'acme/tool', '--tags', '1.0.0', '--format', 'json')),
      );
      expect(viaCli).toMatchObject({ member: 'frank', repository: 'acme/tool' });

      const json = (v: unknown) => JSON.parse(JSON.stringify(v));
      expect(json((await api('GET', '/admin/members')).body.items)).toEqual(
        await cli('member', 'list', '--format', 'json'),
      );
      expect(json((await api('GET', '/admin/entitlements')).body.items)).toEqual(
        await cli('entitlements', '--format', 'json'),
      );
      expect(json((await api('GET', '/admin/entitlements?member=frank')).body.items)).toEqual(
        await cli('entitlements', '--member', 'frank', '--format', 'json'),
      );
      expect(json((await api('GET', '/admin/keys')).body.items)).toEqual(
        await cli('key', 'list', '--format', 'json'),
      );
    });

    it('gives the same explain verdicts as `gatehouse explain`', async () => {
      await api('POST', '/admin/members', { username: 'gina' });
      await api('POST', '/admin/entitlements', { member: 'gina', repository: 'acme/app', tags: ['v1.*'] });
      const cases: Array<[string, string]> = [
        ['gina', 'acme/app:v1.0.0'],
        ['gina', 'acme/app:v2.0.0'],
        ['gina', 'acme/big:1.0'],
        ['nobody-here', 'acme/app:v1.0.0'],
      ];
      const verdicts = async () => {
        const out: Array<{ api: unknown; cli: unknown }> = [];
        for (const [member, image] of cases) {
          const viaApi = (
            await api('GET', `/admin/explain?member=${member}&image=${encodeURIComponent(image)}`)
          ).body;
          const io = captureIo();
          const code = await runCli(['explain', member, image, '--format', 'json'], io, {
            DATABASE_URL: gw.databaseUrl,
            DATA_DIR: gw.dataDir,
          });
          const viaCli = JSON.parse(io.out());
          expect(code).toBe(viaCli.allowed ? 0 : 1);
          out.push({
            api: { member, image, allowed: viaApi.allowed, reason: viaApi.reason },
            cli: { member, image, allowed: viaCli.allowed, reason: viaCli.reason },
          });
        }
        return out;
      };
      // gina has no key yet, then one.
      for (const { api: a, cli: c } of await verdicts()) expect(a).toEqual(c);
      await api('POST', '/admin/members/gina/keys', {});
      const withKey = await verdicts();
      for (const { api: a, cli: c } of withKey) expect(a).toEqual(c);
      expect(withKey.map((v) => (v.api as { reason: string | null }).reason)).toEqual([
        null,
        'tag_not_entitled',
        'repository_not_entitled',
        'member_unknown',
      ]);
    });

    it('returns the same audit events as `gatehouse audit`', async () => {
      await gw.app.get(AuditService).flush(10_000);
      const viaApi = (await api('GET', '/admin/audit?member=pager&limit=100')).body.items;
      const viaCli = await cli('audit', '--member', 'pager', '--limit', '100', '--format', 'json');
      const ids = (rows: Array<{ id: string }>) => rows.map((r) => r.id);
      expect(ids(viaApi)).toEqual(ids(viaCli));
      expect(viaApi[0]).toMatchObject({ ...viaCli[0] });
    });
  });

  describe('OpenAPI', () => {
    it('serves a document listing every admin route and no registry route', async () => {
      const res = await fetch(`${gw.url}/admin/openapi.json`);
      expect(res.status).toBe(200);
      const doc = (await res.json()) as { openapi: string; paths: Record<string, Record<string, unknown>> };
      expect(doc.openapi).toMatch(/^3\./);
      const routes = Object.entries(doc.paths).flatMap(([p, ops]) =>
        Object.keys(ops).map((m) => `${m} ${p}`),
      );
      expect(routes.sort()).toEqual(
        [
          'get /admin/members',
          'post /admin/members',
          'get /admin/members/{username}',
          'post /admin/members/{username}/disable',
          'post /admin/members/{username}/enable',
          'post /admin/members/{username}/keys',
          'get /admin/keys',
          'post /admin/keys/{key}/revoke',
          'get /admin/entitlements',
          'post /admin/entitlements',
          'post /admin/entitlements/revoke',
          'get /admin/audit',
          'get /admin/explain',
          'post /admin/webhooks',
          'get /admin/webhooks',
          'delete /admin/webhooks/{id}',
          'post /admin/webhooks/{id}/test',
          'get /admin/webhooks/{id}/deliveries',
          'post /admin/webhooks/{id}/redeliver',
          'post /admin/webhooks/{id}/enable',
          'post /admin/webhooks/{id}/rotate-secret',
        ].sort(),
      );
      expect(JSON.stringify(doc)).toContain('"bearer"');
    });
  });
});
