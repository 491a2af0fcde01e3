import { AuditQueryService, AuditService } from '@gatehouse/audit';
import { startUpstreamGatewayStack, UpstreamGatewayStack } from '@gatehouse/testing/gateway';
import { seedDownloads } from '@gatehouse/testing/upstream';

/** Downloads count in the member's request budget, after authentication, like /v2/ requests. */
describe('downloads under the per-member rate limit', () => {
  let stack: UpstreamGatewayStack;

  beforeAll(async () => {
    stack = await startUpstreamGatewayStack({
      patLabel: 'downloads-limit',
      gatewayEnv: { RATE_LIMIT_V2_PER_MEMBER: '3', RATE_LIMIT_WINDOW_SECONDS: '60' },
    });
    stack.front.setTokenScopes(stack.pat, ['read:package', 'read:repository']);
    seedDownloads(stack.front);
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('answers 429 with Retry-After past the limit, audited as a download refusal', async () => {
    const m = await stack.member('limited', { 'releases:acme/tool': ['*'] });
    const statuses: number[] = [];
    let retryAfter: string | null = null;
    for (let i = 0; i < 5; i++) {
      const res = await fetch(`${stack.gw.url}/downloads/acme/tool/releases/v1.0.0/checksums.txt`, {
        headers: { authorization: m.basic },
      });
      await res.arrayBuffer();
      statuses.push(res.status);
      if (res.status === 429) retryAfter = res.headers.get('retry-after');
    }
    expect(statuses).toEqual([200, 200, 200, 429, 429]);
    expect(Number(retryAfter)).toBeGreaterThan(0);
    // Another member has a budget of their own.
    const other = await stack.member('other', { 'releases:acme/tool': ['*'] });
    const res = await fetch(`${stack.gw.url}/downloads/acme/tool/releases/v1.0.0/checksums.txt`, {
      headers: { authorization: other.basic },
    });
    expect(res.status).toBe(200);
    await stack.gw.app.get(AuditService).flush();
    const rows = await stack.gw.app.get(AuditQueryService).find({ username: m.username, action: 'download' });
    expect(rows.filter((r) => r.reason === 'rate_limited' && r.httpStatus === 429)).toHaveLength(2);
  });
});
