import { ExecutionContext, HttpException } from '@nestjs/common';
import { AuditEventInput, AuditService } from '@gatehouse/audit';
import { loadGatewayConfig } from '@gatehouse/config';
import { AdminTokenGuard } from './admin-token.guard';
import { AdminTokenStrategy } from './admin-token.strategy';

const TOKEN = 'T'.repeat(40);

function context(authorization?: string) {
  const headers: Record<string, string> = {};
  const request = {
    method: 'GET',
    headers: authorization ? { authorization } : {},
    routeOptions: { url: '/admin/members' },
  };
  const reply = { header: (k: string, v: string) => (headers[k] = v) };
  const ctx = {
    switchToHttp: () => ({ getRequest: () => request, getResponse: () => reply }),
  } as unknown as ExecutionContext;
  return { ctx, headers };
}

const strategies: AdminTokenStrategy[] = [];

/** The guard over a real passport strategy (registered under its own name, removed after each test). */
function guard(env: Record<string, string>) {
  const rows: AuditEventInput[] = [];
  const audit = { record: (e: AuditEventInput) => rows.push(e) } as unknown as AuditService;
  const strategy = new AdminTokenStrategy(loadGatewayConfig(env));
  strategies.push(strategy);
  return { guard: new AdminTokenGuard(strategy, audit), rows };
}

async function statusOf(fn: () => Promise<unknown>): Promise<number | 'passed'> {
  try {
    await fn();
    return 'passed';
  } catch (e) {
    return (e as HttpException).getStatus();
  }
}

describe('AdminTokenGuard', () => {
  afterEach(() => {
    for (const s of strategies.splice(0)) s.onModuleDestroy();
  });

  it('admits exactly `Bearer <ADMIN_TOKEN>`', async () => {
    const { guard: g, rows } = guard({ ADMIN_TOKEN: TOKEN });
    expect(await g.canActivate(context(`Bearer ${TOKEN}`).ctx)).toBe(true);
    expect(await g.canActivate(context(`bearer   ${TOKEN} `).ctx)).toBe(true);
    expect(rows).toEqual([]);
  });

  it("two guards in one process each check their own application's ADMIN_TOKEN", async () => {
    const first = guard({ ADMIN_TOKEN: TOKEN });
    const other = 'O'.repeat(40);
    const second = guard({ ADMIN_TOKEN: other });
    expect(await statusOf(() => first.guard.canActivate(context(`Bearer ${other}`).ctx))).toBe(401);
    expect(await statusOf(() => second.guard.canActivate(context(`Bearer ${TOKEN}`).ctx))).toBe(401);
    expect(await first.guard.canActivate(context(`Bearer ${TOKEN}`).ctx)).toBe(true);
    expect(await second.guard.canActivate(context(`Bearer ${other}`).ctx)).toBe(true);
  });

  it.each([
    ['no header', undefined, 'admin_token_missing'],
    ['Basic', `Basic ${Buffer.from(`admin:${TOKEN}`).toString('base64')}`, 'admin_token_missing'],
    ['a prefix of the token', `Bearer ${TOKEN.slice(0, 39)}`, 'admin_token_invalid'],
    ['the token and more', `Bearer ${TOKEN}x`, 'admin_token_invalid'],
    ['a JWT', 'Bearer eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJtIn0.sig', 'admin_token_invalid'],
  ])('refuses %s with 401, a challenge and an audit row', async (_what, authorization, reason) => {
    const { guard: g, rows } = guard({ ADMIN_TOKEN: TOKEN });
    const { ctx, headers } = context(authorization);
    expect(await statusOf(() => g.canActivate(ctx))).toBe(401);
    expect(headers['WWW-Authenticate']).toBe('Bearer realm="gatehouse-admin"');
    expect(rows).toEqual([
      expect.objectContaining({ action: 'admin.auth.refuse', outcome: 'denied', reason }),
    ]);
    expect(JSON.stringify(rows)).not.toContain(TOKEN);
  });

  it('makes the API absent (404) without ADMIN_TOKEN, whatever is presented', async () => {
    const { guard: g, rows } = guard({});
    expect(await statusOf(async () => g.canActivate(context(`Bearer ${TOKEN}`).ctx))).toBe(404);
    expect(rows).toEqual([]);
  });

  it('refuses a short or spaced ADMIN_TOKEN at start, naming the variable', () => {
    expect(() => loadGatewayConfig({ ADMIN_TOKEN: 'short' })).toThrow(/ADMIN_TOKEN must be at least 32/);
    expect(() => loadGatewayConfig({ ADMIN_TOKEN: 'a'.repeat(20) + ' ' + 'b'.repeat(20) })).toThrow(
      /ADMIN_TOKEN/,
    );
    expect(loadGatewayConfig({ ADMIN_TOKEN: TOKEN }).admin.token).toBe(TOKEN);
    expect(loadGatewayConfig({ ADMIN_TOKEN: '' }).admin.token).toBeNull();
  });
});
