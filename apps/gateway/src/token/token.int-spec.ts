import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { decodeJwt, SignJWT, UnsecuredJWT } from 'jose';
import { DataSource } from 'typeorm';
import { AuditEvent, AuditQueryService, AuditService } from '@gatehouse/audit';
import { RegistryAuthService, repositoryPullScope, TokenSigningKey } from '@gatehouse/auth';
import { EntitlementService } from '@gatehouse/entitlements';
import { AccessKeyService, MemberService } from '@gatehouse/members';
import { OciError } from '@gatehouse/oci';
import { createTestGateway, TestGateway } from '@gatehouse/testing/gateway';

/**
 * The token endpoint and /v2/ authentication through the real gateway (Fastify, every module,
 * migrations) with a real PostgreSQL, over HTTP.
 */
describe('token endpoint and registry authentication', () => {
  let gw: TestGateway;
  let members: MemberService;
  let keys: AccessKeyService;
  let entitlements: EntitlementService;
  let registryAuth: RegistryAuthService;

  beforeAll(async () => {
    gw = await createTestGateway({
      env: {
        AUTH_FAILED_LOGINS_PER_IP: '1000',
        AUTH_FAILED_LOGINS_PER_USERNAME: '4',
        AUTH_STATE_CACHE_SECONDS: '5',
        // /v2/ must be enabled for the ping; these tests never reach upstream.
        FORGEJO_BASE_URL: 'http://127.0.0.1:9',
        FORGEJO_API_TOKEN: 'a'.repeat(40),
      },
    });
    members = gw.app.get(MemberService);
    keys = gw.app.get(AccessKeyService);
    entitlements = gw.app.get(EntitlementService);
    registryAuth = gw.app.get(RegistryAuthService);
  });
  afterAll(async () => {
    await gw?.close();
  });

  async function member(
    entitled: Record<string, string[]> = {},
  ): Promise<{ username: string; key: string; keyId: string; memberId: string }> {
    const username = `m-${randomUUID().slice(0, 8)}`;
    const m = await members.create(username);
    const { key, accessKey } = await keys.create(username, { name: 'test' });
    for (const [repo, rules] of Object.entries(entitled)) await entitlements.grant(username, repo, rules);
    return { username, key, keyId: accessKey.id, memberId: m.id };
  }

  const basic = (u: string, p: string) => 'Basic ' + Buffer.from(`${u}:${p}`).toString('base64');

  async function getToken(auth: string | null, params: Array<[string, string]> = []) {
    const qs = new URLSearchParams([['service', gw.host], ...params]).toString();
    const res = await fetch(`${gw.url}/auth/token?${qs}`, { headers: auth ? { authorization: auth } : {} });
    return { res, body: (await res.json()) as Record<string, unknown> };
  }

  async function postToken(form: Record<string, string>) {
    const res = await fetch(`${gw.url}/auth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ service: gw.host, client_id: 'test-client', ...form }).toString(),
    });
    return { res, body: (await res.json()) as Record<string, unknown> };
  }

  async function auditRows(username: string): Promise<AuditEvent[]> {
    await gw.app.get(AuditService).flush(10_000);
    return gw.app.get(AuditQueryService).find({ username });
  }

  async function authError(token: string, scope = repositoryPullScope('acme/app')): Promise<OciError> {
    try {
      await registryAuth.authenticate(`Bearer ${token}`, scope);
    } catch (e) {
      if (e instanceof OciError) return e;
      throw e;
    }
    throw new Error('the token was accepted');
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

  describe('GET /v2/ over HTTP', () => {
    const ping = (token?: string) =>
      fetch(`${gw.url}/v2/`, { headers: token ? { authorization: `Bearer ${token}` } : {} });

    it('challenges without a token, answers 200 {} with a login token, and 401 again within 10 s of revocation', async () => {
      const m = await member();
      const anonymous = await ping();
      expect(anonymous.status).toBe(401);
      expect(anonymous.headers.get('www-authenticate')).toBe(
        `Bearer realm="${gw.url}/auth/token",service="${gw.host}"`,
      );
      expect(anonymous.headers.get('docker-distribution-api-version')).toBe('registry/2.0');

      const token = (await getToken(basic(m.username, m.key))).body.token as string;
      const ok = await ping(token);
      expect(ok.status).toBe(200);
      expect(await ok.json()).toEqual({});

      const started = Date.now();
      await keys.revoke(m.keyId);
      let status = 200;
      while (status === 200 && Date.now() - started < 12_000) {
        status = (await ping(token)).status;
        if (status === 200) await new Promise((r) => setTimeout(r, 200));
      }
      expect(status).toBe(401);
      expect(Date.now() - started).toBeLessThan(10_000);
    });

    it('refuses a token signed with another key, or with alg=none', async () => {
      const m = await member();
      const good = (await getToken(basic(m.username, m.key))).body.token as string;
      const [, payload] = good.split('.');
      const none = `${Buffer.from(JSON.stringify({ alg: 'none' })).toString('base64url')}.${payload}.`;
      const other = await TokenSigningKey.fromPem(TokenSigningKey.generatePem());
      const foreign = await new SignJWT(decodeJwt(good))
        .setProtectedHeader({ alg: 'ES256', kid: other.kid })
        .sign(other.privateKey);
      for (const token of [none, foreign]) {
        const r = await ping(token);
        expect(r.status).toBe(401);
        expect(r.headers.get('www-authenticate')).toBe(
          `Bearer realm="${gw.url}/auth/token",service="${gw.host}",error="invalid_token"`,
        );
        expect(await r.json()).toEqual({ errors: [expect.objectContaining({ code: 'UNAUTHORIZED' })] });
      }
    });
  });

  describe('registry authentication of issued tokens', () => {
    async function forge(
      m: { memberId: string; username: string; keyId: string },
      overrides: Record<string, unknown>,
      key?: TokenSigningKey,
    ) {
      const signingKey =
        key ?? (await TokenSigningKey.fromPem(readFileSync(gw.config.auth.signingKeyFile, 'utf8')));
      const now = Math.floor(Date.now() / 1000);
      return new SignJWT({
        iss: 'gatehouse',
        sub: m.memberId,
        aud: gw.host,
        iat: now,
        nbf: now,
        exp: now + 300,
        jti: randomUUID(),
        username: m.username,
        akid: m.keyId,
        token_use: 'access',
        access: [repositoryPullScope('acme/app')],
        ...overrides,
      })
        .setProtectedHeader({ alg: 'ES256', kid: signingKey.kid })
        .sign(signingKey.privateKey);
    }

    it('accepts a well-formed token signed with the gateway key (control)', async () => {
      const m = await member({ 'acme/app': ['*'] });
      const principal = await registryAuth.authenticate(
        `Bearer ${await forge(m, {})}`,
        repositoryPullScope('acme/app'),
      );
      expect(principal.access).toEqual([repositoryPullScope('acme/app')]);
    });

    it.each<[string, (m: { memberId: string; username: string; keyId: string }) => Promise<string>]>([
      ['wrong audience', (m) => forge(m, { aud: 'elsewhere.example.com' })],
      [
        'expired',
        (m) =>
          forge(m, {
            iat: Math.floor(Date.now() / 1000) - 900,
            nbf: Math.floor(Date.now() / 1000) - 900,
            exp: Math.floor(Date.now() / 1000) - 600,
          }),
      ],
      ['not yet valid', (m) => forge(m, { nbf: Math.floor(Date.now() / 1000) + 600 })],
      [
        'another signing key',
        async (m) => forge(m, {}, await TokenSigningKey.fromPem(TokenSigningKey.generatePem())),
      ],
      [
        'alg=none',
        async (m) =>
          new UnsecuredJWT({
            sub: m.memberId,
            aud: gw.host,
            iss: 'gatehouse',
            username: m.username,
            akid: m.keyId,
            token_use: 'access',
            access: [],
          })
            .setIssuedAt()
            .setExpirationTime('5m')
            .encode(),
      ],
    ])('refuses a token with %s: 401 with the Bearer challenge and scope', async (_label, make) => {
      const m = await member({ 'acme/app': ['*'] });
      const e = await authError(await make(m));
      expect(e.status).toBe(401);
      expect(e.code).toBe('UNAUTHORIZED');
      expect(e.headers['WWW-Authenticate']).toBe(
        `Bearer realm="${gw.url}/auth/token",service="${gw.host}",scope="repository:acme/app:pull",error="invalid_token"`,
      );
    });

    it('challenges without a token, with no scope on the ping', async () => {
      const e = await registryAuth.authenticate(undefined, null).catch((x: unknown) => x as OciError);
      expect(e).toBeInstanceOf(OciError);
      expect((e as OciError).headers['WWW-Authenticate']).toBe(
        `Bearer realm="${gw.url}/auth/token",service="${gw.host}"`,
      );
    });

    it('asks for a new token when the member is entitled but the token lacks the scope; reports not-entitled otherwise', async () => {
      const m = await member({ 'acme/app': ['*'] });
      const login = (await getToken(basic(m.username, m.key))).body.token as string;
      const e = await authError(login);
      expect(e.headers['WWW-Authenticate']).toContain('error="insufficient_scope"');
      const other = await registryAuth.authenticate(`Bearer ${login}`, repositoryPullScope('acme/secret'));
      expect(other.requiredScopeGranted).toBe(false);
    });

    it.each<[string, (m: { username: string; keyId: string }) => Promise<unknown>, string]>([
      ['revoking the key', (m) => keys.revoke(m.keyId), 'key_revoked'],
      ['disabling the member', (m) => members.disable(m.username), 'member_disabled'],
    ])('%s stops an already-issued token within 10 seconds', async (_label, revoke, reason) => {
      const m = await member({ 'acme/app': ['*'] });
      const token = (await getToken(basic(m.username, m.key), [['scope', 'repository:acme/app:pull']])).body
        .token as string;
      await registryAuth.authenticate(`Bearer ${token}`, repositoryPullScope('acme/app'));
      const started = Date.now();
      await revoke(m);
      let refused: OciError | null = null;
      while (!refused && Date.now() - started < 12_000) {
        refused = await registryAuth
          .authenticate(`Bearer ${token}`, repositoryPullScope('acme/app'))
          .then(() => null)
          .catch((e: unknown) => e as OciError);
        if (!refused) await new Promise((r) => setTimeout(r, 200));
      }
      expect(refused?.status).toBe(401);
      expect(Date.now() - started).toBeLessThan(10_000);
      const rows = await auditRows(m.username);
      expect(rows.find((r) => r.action === 'registry.auth.refuse')).toMatchObject({
        reason,
        outcome: 'denied',
        httpStatus: 401,
      });
    });

    it('removing the entitlement drops the repository from an already-issued token within 10 seconds', async () => {
      const m = await member({ 'acme/app': ['*'] });
      const token = (await getToken(basic(m.username, m.key), [['scope', 'repository:acme/app:pull']])).body
        .token as string;
      const started = Date.now();
      await gw.app.get(DataSource).query(`DELETE FROM entitlements WHERE member_id = $1`, [m.memberId]);
      let granted = true;
      while (granted && Date.now() - started < 12_000) {
        const p = await registryAuth.authenticate(`Bearer ${token}`, repositoryPullScope('acme/app'));
        granted = p.requiredScopeGranted;
        if (granted) await new Promise((r) => setTimeout(r, 200));
      }
      expect(granted).toBe(false);
      expect(Date.now() - started).toBeLessThan(10_000);
      expect(await entitlements.liveEntitlement(m.memberId, 'acme/app')).toBeNull();
    });
  });
});
