import { randomUUID } from 'node:crypto';
import { decodeJwt } from 'jose';
import { DataSource } from 'typeorm';
import { repositoryPullScope } from '@gatehouse/auth';
import {
  auditRows,
  basic,
  getToken,
  gw,
  keys,
  member,
  members,
  registryAuth,
  useTokenGateway,
} from './token.fixture';

/**
 * The token endpoint (GET for the Docker token spec, POST for OAuth2) through the real gateway
 * (Fastify, every module, migrations) with a real PostgreSQL, over HTTP. /v2/ and the registry's
 * authentication of the tokens issued: token.registry-auth.int-spec.ts.
 */
describe('token endpoint and registry authentication', () => {
  useTokenGateway();

  async function postToken(form: Record<string, string>) {
    const res = await fetch(`${gw.url}/auth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ service: gw.host, client_id: 'test-client', ...form }).toString(),
    });
    return { res, body: (await res.json()) as Record<string, unknown> };
  }

  describe('GET (Docker token spec)', () => {
    it('a scope-less request is a login: token usable for GET /v2/', async () => {
      const m = await member();
      const { res, body } = await getToken(basic(m.username, m.key), [
        ['account', m.username],
        ['client_id', 'docker'],
      ]);
      expect(res.status).toBe(200);
      expect(res.headers.get('cache-control')).toBe('no-store');
      expect(body.token).toEqual(body.access_token);
      expect(body.expires_in).toBe(300);
      expect(body.issued_at).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/);
      expect(body.refresh_token).toBeUndefined();
      const claims = decodeJwt(body.token as string);
      expect(claims).toMatchObject({
        iss: 'gatehouse',
        sub: m.memberId,
        aud: gw.host,
        username: m.username,
        akid: m.keyId,
        access: [],
      });
      expect((claims.exp as number) - (claims.iat as number)).toBe(300);
      expect(typeof claims.jti).toBe('string');
      const principal = await registryAuth.authenticate(`Bearer ${body.token as string}`, null);
      expect(principal).toMatchObject({
        memberId: m.memberId,
        username: m.username,
        accessKeyId: m.keyId,
        requiredScopeGranted: true,
      });
      // Usernames compare lowercase.
      expect((await getToken(basic(m.username.toUpperCase(), m.key))).res.status).toBe(200);
    });

    it('grants requested ∩ entitled, pull only: full, partial and empty grants', async () => {
      const m = await member({ 'acme/app': ['v1.*'], 'acme/tools/cli': ['*'] });
      const full = await getToken(basic(m.username, m.key), [['scope', 'repository:acme/app:pull,push']]);
      expect(full.res.status).toBe(200);
      expect(decodeJwt(full.body.token as string).access).toEqual([
        { type: 'repository', name: 'acme/app', actions: ['pull'] },
      ]);

      const partial = await getToken(basic(m.username, m.key), [
        ['scope', 'repository:acme/app:pull'],
        ['scope', 'repository:acme/secret:pull'],
        ['scope', 'repository:acme/tools/cli:pull registry:catalog:*'],
      ]);
      expect(partial.res.status).toBe(200);
      expect(decodeJwt(partial.body.token as string).access).toEqual([
        { type: 'repository', name: 'acme/app', actions: ['pull'] },
        { type: 'repository', name: 'acme/tools/cli', actions: ['pull'] },
        { type: 'registry', name: 'catalog', actions: ['*'] },
      ]);

      const empty = await getToken(basic(m.username, m.key), [['scope', 'repository:acme/secret:pull']]);
      expect(empty.res.status).toBe(200);
      expect(decodeJwt(empty.body.token as string).access).toEqual([]);

      const rows = await auditRows(m.username);
      const partialRow = rows.find(
        (r) => (r.details as { scopesRequested?: string[] })?.scopesRequested?.length === 4,
      );
      expect(partialRow).toMatchObject({
        action: 'token.issue',
        outcome: 'allowed',
        httpStatus: 200,
        memberId: m.memberId,
      });
      expect(partialRow!.details).toMatchObject({
        scopesRequested: [
          'repository:acme/app:pull',
          'repository:acme/secret:pull',
          'repository:acme/tools/cli:pull',
          'registry:catalog:*',
        ],
        scopesGranted: ['repository:acme/app:pull', 'repository:acme/tools/cli:pull', 'registry:catalog:*'],
      });
      expect(partialRow!.clientIp).toBe('127.0.0.1');
      expect(partialRow!.userAgent).toBeTruthy();
    });

    it('a malformed scope is a 400 in the OCI envelope', async () => {
      const m = await member();
      const { res, body } = await getToken(basic(m.username, m.key), [['scope', 'repository-acme-app']]);
      expect(res.status).toBe(400);
      expect(body).toEqual({
        errors: [
          expect.objectContaining({
            code: 'REQUEST_INVALID',
            message: expect.stringMatching(/malformed scope/),
          }),
        ],
      });
    });

    it('refuses missing credentials, an unknown user and a wrong key with the same 401', async () => {
      const m = await member();
      const missing = await getToken(null);
      expect(missing.res.status).toBe(401);
      expect(missing.res.headers.get('www-authenticate')).toBe(`Basic realm="${gw.host}"`);
      expect(missing.body).toEqual({ errors: [expect.objectContaining({ code: 'UNAUTHORIZED' })] });

      const wrongKey = await getToken(basic(m.username, `ghk_${'A'.repeat(43)}`));
      const unknownUser = await getToken(basic(`nobody-${randomUUID().slice(0, 6)}`, m.key));
      const garbage = await getToken(basic(m.username, 'not-a-key'));
      for (const r of [wrongKey, unknownUser, garbage]) {
        expect(r.res.status).toBe(401);
        expect(r.res.headers.get('www-authenticate')).toBe(`Basic realm="${gw.host}"`);
      }
      // Identical but for the request id each error names (for support).
      const masked = (r: typeof wrongKey) => {
        const id = r.res.headers.get('x-request-id')!;
        expect(JSON.stringify(r.body)).toContain(id);
        return JSON.parse(JSON.stringify(r.body).split(id).join('<request id>')) as unknown;
      };
      expect(masked(unknownUser)).toEqual(masked(wrongKey));
      expect(masked(garbage)).toEqual(masked(wrongKey));

      const rows = await auditRows(m.username);
      expect(rows.filter((r) => r.action === 'token.refuse' && r.reason === 'bad_credentials')).toHaveLength(
        2,
      );
    });

    it('refuses a revoked key, an expired key and a disabled member (audited with the true reason)', async () => {
      const revoked = await member();
      await keys.revoke(revoked.keyId);
      const expired = await member();
      await gw.app
        .get(DataSource)
        .query(`UPDATE access_keys SET expires_at = now() - interval '1 minute' WHERE id = $1`, [
          expired.keyId,
        ]);
      const disabled = await member();
      await members.disable(disabled.username);

      for (const [m, reason] of [
        [revoked, 'key_revoked'],
        [expired, 'key_expired'],
        [disabled, 'member_disabled'],
      ] as const) {
        const { res, body } = await getToken(basic(m.username, m.key));
        expect(res.status).toBe(401);
        expect(body).toEqual({
          errors: [
            {
              code: 'UNAUTHORIZED',
              message: 'invalid username or access key',
              detail: {
                requestId: res.headers.get('x-request-id'),
                help: expect.stringContaining(
                  `gatehouse audit --request-id ${res.headers.get('x-request-id')}`,
                ),
              },
            },
          ],
        });
        const rows = await auditRows(m.username);
        expect(rows[0]).toMatchObject({
          action: 'token.refuse',
          outcome: 'denied',
          reason,
          httpStatus: 401,
          memberId: m.memberId,
        });
      }
      await members.enable(disabled.username);
      expect((await getToken(basic(disabled.username, disabled.key))).res.status).toBe(200);
    });

    it('limits failed logins per username from one address with 429 and Retry-After, before checking credentials', async () => {
      const m = await member();
      for (let i = 0; i < 4; i++)
        expect((await getToken(basic(m.username, `wrong-${i}`))).res.status).toBe(401);
      const limited = await getToken(basic(m.username, m.key));
      expect(limited.res.status).toBe(429);
      expect(Number(limited.res.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(limited.body).toEqual({ errors: [expect.objectContaining({ code: 'TOOMANYREQUESTS' })] });
      const rows = await auditRows(m.username);
      expect(rows[0]).toMatchObject({ action: 'token.refuse', reason: 'rate_limited', httpStatus: 429 });
      // Another member from the same address is not affected by this username's failures.
      const other = await member();
      expect((await getToken(basic(other.username, other.key))).res.status).toBe(200);
    });
  });

  describe('POST (OAuth2)', () => {
    it('password grant echoes scope and returns a refresh token only for offline access', async () => {
      const m = await member({ 'acme/app': ['*'] });
      const online = await postToken({
        grant_type: 'password',
        username: m.username,
        password: m.key,
        scope: 'repository:acme/app:pull',
      });
      expect(online.res.status).toBe(200);
      expect(online.body).toMatchObject({ scope: 'repository:acme/app:pull', expires_in: 300 });
      expect(online.body.token).toEqual(online.body.access_token);
      expect(online.body.refresh_token).toBeUndefined();
      expect(decodeJwt(online.body.access_token as string).access).toEqual([repositoryPullScope('acme/app')]);

      const offline = await postToken({
        grant_type: 'password',
        username: m.username,
        password: m.key,
        scope: 'repository:acme/app:pull repository:acme/secret:pull',
        access_type: 'offline',
      });
      expect(offline.res.status).toBe(200);
      expect(offline.body.scope).toBe('repository:acme/app:pull repository:acme/secret:pull');
      expect(typeof offline.body.refresh_token).toBe('string');
      expect(decodeJwt(offline.body.refresh_token as string)).toMatchObject({
        token_use: 'refresh',
        akid: m.keyId,
        sub: m.memberId,
      });
    });

    it('refresh_token grant works until the key is revoked, then is refused', async () => {
      const m = await member({ 'acme/app': ['*'] });
      const login = await getToken(basic(m.username, m.key), [
        ['offline_token', 'true'],
        ['client_id', 'docker'],
      ]);
      const refreshToken = login.body.refresh_token as string;
      expect(typeof refreshToken).toBe('string');

      const refreshed = await postToken({
        grant_type: 'refresh_token',
        refresh_token: refreshToken,
        scope: 'repository:acme/app:pull',
      });
      expect(refreshed.res.status).toBe(200);
      expect(refreshed.body.scope).toBe('repository:acme/app:pull');
      expect(decodeJwt(refreshed.body.token as string).access).toEqual([repositoryPullScope('acme/app')]);

      // An access token is not a refresh token.
      const wrongUse = await postToken({
        grant_type: 'refresh_token',
        refresh_token: refreshed.body.token as string,
      });
      expect(wrongUse.res.status).toBe(401);

      await keys.revoke(m.keyId);
      const dead = await postToken({
        grant_type: 'refresh_token',
        refresh_token: refreshToken,
        scope: 'repository:acme/app:pull',
      });
      expect(dead.res.status).toBe(401);
      expect(dead.body).toEqual({ errors: [expect.objectContaining({ code: 'UNAUTHORIZED' })] });
      const rows = await auditRows(m.username);
      expect(rows[0]).toMatchObject({ action: 'token.refuse', reason: 'key_revoked', memberId: m.memberId });
      expect(rows[0].details).toMatchObject({ grantType: 'refresh_token' });
    });

    it('refuses a refresh token once the member is disabled', async () => {
      const m = await member();
      const login = await postToken({
        grant_type: 'password',
        username: m.username,
        password: m.key,
        access_type: 'offline',
      });
      await members.disable(m.username);
      const r = await postToken({
        grant_type: 'refresh_token',
        refresh_token: login.body.refresh_token as string,
      });
      expect(r.res.status).toBe(401);
      expect((await auditRows(m.username))[0]).toMatchObject({ reason: 'member_disabled' });
    });

    it('answers 400 for an unsupported or missing grant_type', async () => {
      for (const form of [{ grant_type: 'client_credentials' }, {}] as Array<Record<string, string>>) {
        const { res, body } = await postToken(form);
        expect(res.status).toBe(400);
        expect(body).toEqual({
          errors: [
            expect.objectContaining({
              code: 'REQUEST_INVALID',
              message: expect.stringMatching(/grant_type/),
            }),
          ],
        });
      }
      const { res } = await postToken({ grant_type: 'refresh_token' });
      expect(res.status).toBe(400);
    });

    it('refuses a wrong key on the password grant', async () => {
      const m = await member();
      const { res } = await postToken({ grant_type: 'password', username: m.username, password: 'ghk_nope' });
      expect(res.status).toBe(401);
    });
  });
});
