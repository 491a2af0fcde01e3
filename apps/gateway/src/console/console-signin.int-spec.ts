import { createTestGateway, TestGateway } from '@gatehouse/testing/gateway';

const ADMIN_TOKEN = 'console-signin-spec-admin-token-0123456789';

/** The ADMIN_TOKEN form as a browser posts it (same origin). */
const signIn = (gw: TestGateway, token: string, headers: Record<string, string> = {}) =>
  fetch(`${gw.url}/console/login/token`, {
    method: 'POST',
    redirect: 'manual',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      'sec-fetch-site': 'same-origin',
      ...headers,
    },
    body: new URLSearchParams({ token }).toString(),
  });

describe('console sign-in with ADMIN_TOKEN', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await createTestGateway({
      env: { ADMIN_TOKEN, AUTH_FAILED_LOGINS_PER_IP: '3', TRUST_PROXY: 'loopback' },
    });
  });
  afterAll(() => gw?.close());

  it('signs in with a session cookie and the security headers, and refuses another site', async () => {
    const ok = await signIn(gw, ADMIN_TOKEN);
    expect(ok.status).toBe(200);
    expect(ok.headers.get('set-cookie')).toMatch(
      /^gatehouse_console=[\w-]{43}; Max-Age=43200; Path=\/console\/; HttpOnly; SameSite=Strict$/,
    );
    expect(ok.headers.get('content-security-policy')).toContain("script-src 'self'");
    const cookie = ok.headers.get('set-cookie')!.split(';')[0];
    const page = await fetch(`${gw.url}/console/members`, { headers: { cookie } });
    expect(page.status).toBe(200);
    // Plain http: no Secure flag. Behind a trusted TLS proxy: Secure.
    expect(ok.headers.get('set-cookie')).not.toContain('Secure');
    const tls = await signIn(gw, ADMIN_TOKEN, { 'x-forwarded-proto': 'https' });
    expect(tls.headers.get('set-cookie')).toMatch(/; Secure/);
    const crossSite = await signIn(gw, ADMIN_TOKEN, { 'sec-fetch-site': 'cross-site' });
    expect(crossSite.status).toBe(403);
  });

  it('counts wrong tokens against the address and then refuses even the right one for a while', async () => {
    for (let i = 0; i < 3; i++) expect((await signIn(gw, `wrong-${i}`)).status).toBe(401);
    const limited = await signIn(gw, ADMIN_TOKEN);
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
  });
});
