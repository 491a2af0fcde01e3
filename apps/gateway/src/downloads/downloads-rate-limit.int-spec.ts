import { connect } from 'node:net';
import { AuditQueryService, AuditService } from '@gatehouse/audit';
import { BlobStreamSlots } from '@gatehouse/rate-limit';
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
      const res = await fetch(`${stack.gw.url}/downloads/releases/acme/tool/v1.0.0/checksums.txt`, {
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
    const res = await fetch(`${stack.gw.url}/downloads/releases/acme/tool/v1.0.0/checksums.txt`, {
      headers: { authorization: other.basic },
    });
    expect(res.status).toBe(200);
    await stack.gw.app.get(AuditService).flush();
    const rows = await stack.gw.app.get(AuditQueryService).find({ username: m.username, action: 'download' });
    expect(rows.filter((r) => r.reason === 'rate_limited' && r.httpStatus === 429)).toHaveLength(2);
  });
});

/** A file download holds a stream slot like a blob GET: one cap per member for both. */
describe('downloads under the per-member stream cap', () => {
  let stack: UpstreamGatewayStack;

  beforeAll(async () => {
    stack = await startUpstreamGatewayStack({
      patLabel: 'downloads-streams',
      gatewayEnv: { RATE_LIMIT_BLOB_STREAMS_PER_MEMBER: '1' },
    });
    stack.front.setTokenScopes(stack.pat, ['read:package', 'read:repository']);
    seedDownloads(stack.front);
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('answers 429 while the member streams its cap, and serves again once that stream is gone', async () => {
    const m = await stack.member('streamer', { 'releases:acme/tool': ['*'] });
    const slots = stack.gw.app.get(BlobStreamSlots);
    const asset = '/downloads/releases/acme/tool/v1.2.0/tool-linux-amd64';
    const { port } = new URL(stack.gw.url);
    // A client that asks for the 10 MB asset and never reads it.
    const stalled = connect(Number(port), '127.0.0.1');
    stalled.on('error', () => undefined);
    stalled.write(`GET ${asset} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: ${m.basic}\r\n\r\n`);
    try {
      await waitFor(() => slots.count() === 1, 'the stalled download to hold its slot');
      const refused = await fetch(`${stack.gw.url}/downloads/releases/acme/tool/v1.0.0/checksums.txt`, {
        headers: { authorization: m.basic },
      });
      expect(refused.status).toBe(429);
      expect(refused.headers.get('retry-after')).toBe('5');
      expect(((await refused.json()) as { errors: Array<{ code: string }> }).errors[0].code).toBe(
        'TOOMANYREQUESTS',
      );
      // The listing streams no file and takes no slot.
      const listing = await fetch(`${stack.gw.url}/downloads/releases/acme/tool`, {
        headers: { authorization: m.basic },
      });
      expect(listing.status).toBe(200);
      await listing.arrayBuffer();
    } finally {
      stalled.destroy();
    }
    await waitFor(() => slots.count() === 0, 'the slot to come back');
    const served = await fetch(`${stack.gw.url}/downloads/releases/acme/tool/v1.0.0/checksums.txt`, {
      headers: { authorization: m.basic },
    });
    expect(served.status).toBe(200);
    await served.arrayBuffer();
    await stack.gw.app.get(AuditService).flush();
    const rows = await stack.gw.app.get(AuditQueryService).find({ username: m.username, action: 'download' });
    expect(
      rows.filter(
        (r) => r.reason === 'rate_limited' && (r.details as { limiter?: string })?.limiter === 'blob_streams',
      ),
    ).toHaveLength(1);
  });
});

async function waitFor(check: () => boolean, what: string, ms = 10_000): Promise<void> {
  const until = Date.now() + ms;
  while (!check()) {
    if (Date.now() > until) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
