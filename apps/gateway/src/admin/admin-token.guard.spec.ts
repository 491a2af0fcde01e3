import { ExecutionContext, HttpException } from '@nestjs/common';
import { AuditEventInput, AuditService } from '@gatehouse/audit';
import { loadGatewayConfig } from '@gatehouse/config';
import { AdminTokenGuard } from './admin-token.guard';

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

function guard(env: Record<string, string>) {
  const rows: AuditEventInput[] = [];
  const audit = { record: (e: AuditEventInput) => rows.push(e) } as unknown as AuditService;
  return { guard: new AdminTokenGuard(loadGatewayConfig(env), audit), rows };
}

function statusOf(fn: () => unknown): number | 'passed' {
  try {
    fn();
    return 'passed';
  } catch (e) {
    return (e as HttpException).getStatus();
  }
}

describe('AdminTokenGuard', () => {
  it('admits exactly `Bearer <ADMIN_TOKEN>`', () => {
    const { guard: g, rows } = guard({ ADMIN_TOKEN: TOKEN });
    expect(g.canActivate(context(`Bearer ${TOKEN}`).ctx)).toBe(true);
    expect(g.canActivate(context(`bearer   ${TOKEN} `).ctx)).toBe(true);
    expect(rows).toEqual([]);
  });

  it.each([
    ['no header', undefined, 'admin_token_missing'],
    ['Basic', `Basic ${Buffer.from(`admin:${TOKEN}`).toString('base64')}`, 'admin_token_missing'],
    ['a prefix of the token', `Bearer ${TOKEN.slice(0, 39)}`, 'admin_token_invalid'],
    ['the token and more', `Bearer ${TOKEN}x`, 'admin_token_invalid'],
    ['a JWT', 'Bearer eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJtIn0.sig', 'admin_token_invalid'],
  ])('refuses %s with 401, a challenge and an audit row', (_what, authorization, reason) => {
    const { guard: g, rows } = guard({ ADMIN_TOKEN: TOKEN });
    const { ctx, headers } = context(authorization);
    expect(statusOf(() => g.canActivate(ctx))).toBe(401);
    expect(headers['WWW-Authenticate']).toBe('Bearer realm="gatehouse-admin"');
    expect(rows).toEqual([
      expect.objectContaining({ action: 'admin.auth.refuse', outcome: 'denied', reason }),
    ]);
    expect(JSON.stringify(rows)).not.toContain(TOKEN);
  });

  it('makes the API absent (404) without ADMIN_TOKEN, whatever is presented', () => {
    const { guard: g, rows } = guard({});
    expect(statusOf(() => g.canActivate(context(`Bearer ${TOKEN}`).ctx))).toBe(404);
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
