import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { decodeJwt, SignJWT, UnsecuredJWT } from 'jose';
import { DataSource } from 'typeorm';
import { repositoryPullScope, TokenSigningKey } from '@gatehouse/auth';
import { OciError } from '@gatehouse/oci';
import {
  auditRows,
  basic,
  entitlements,
  getToken,
  gw,
  keys,
  member,
  members,
  registryAuth,
  useTokenGateway,
} from './token.fixture';

/**
 * GET /v2/ and the registry's authentication of issued tokens through the real gateway (Fastify,
 * every module, migrations) with a real PostgreSQL. The token endpoint itself:
 * token.endpoint.int-spec.ts.
 */
describe('token endpoint and registry authentication', () => {
  useTokenGateway();

  async function authError(token: string, scope = repositoryPullScope('acme/app')): Promise<OciError> {
    try {
      await registryAuth.authenticate(`Bearer ${token}`, scope);
    } catch (e) {
      if (e instanceof OciError) return e;
      throw e;
    }
    throw new Error('the token was accepted');
  }

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
