import { join } from 'node:path';
import { ThrottlerStorage } from '@nestjs/throttler';
import { AuditQueryService, AuditService } from '@gatehouse/audit';
import {
  createTestGateway,
  StackMember,
  startUpstreamGatewayStack,
  TestGateway,
  UpstreamGatewayStack,
} from '@gatehouse/testing/gateway';
import { ContainerToolsSandbox, createContainerToolsSandbox, seedImage } from '@gatehouse/testing/upstream';

/**
 * The request limits through the real gateway (Fastify, PostgreSQL, the one exception filter)
 * in front of the Forgejo front and a real registry, with real skopeo.
 */
describe('rate limits through the gateway', () => {
  // The stack's own gateway runs with the default limits; the small ones get a gateway of their own.
  let stack: UpstreamGatewayStack;
  let tools: ContainerToolsSandbox;

  const member = (gw: TestGateway, grants: Record<string, string[]>) => stack.member('rl', grants, gw);
  const token = (gw: TestGateway, who: StackMember, scope: string) => stack.token(who, [scope], gw);

  async function metrics(gw: TestGateway): Promise<string> {
    return (await fetch(`${gw.url}/metrics`)).text();
  }

  beforeAll(async () => {
    stack = await startUpstreamGatewayStack({ patLabel: 'rate-limit' });
    tools = await createContainerToolsSandbox();
  });

  afterAll(async () => {
    await tools?.cleanup();
    await stack?.stop();
  });

  describe('with the default limits', () => {
    let gw: TestGateway;
    beforeAll(() => {
      gw = stack.gw;
    });

    it('never stops one member pulling the multi-arch acme/app (both architectures) and acme/big', async () => {
      expect(gw.config.rateLimit).toEqual({
        windowSeconds: 60,
        v2PerMember: 3000,
        tokenPerIp: 600,
        anonymousPerIp: 600,
        blobStreamsPerMember: 64,
        redisUrl: null,
      });
      const who = await member(gw, { 'acme/app': ['*'], 'acme/big': ['*'] });
      const creds = `${who.username}:${who.key}`;
      for (const [ref, dest] of [
        ['acme/app:v1.0.0', 'app'],
        ['acme/app:v1.1.0', 'app-next'],
        ['acme/big:1.0', 'big'],
      ]) {
        const r = await tools.skopeo([
          'copy',
          '--all',
          '--src-tls-verify=false',
          '--src-creds',
          creds,
          `docker://${gw.host}/${ref}`,
          `oci:${join(tools.dir, `default-${dest}`)}:x`,
        ]);
        expect({ ref, code: r.code, stderr: r.stderr }).toEqual({ ref, code: 0, stderr: '' });
      }
      expect(seedImage(stack.seed, 'acme/app', 'v1.0.0').manifests.length).toBe(2);

      await gw.app.get(AuditService).flush(10_000);
      const rows = await gw.app.get(AuditQueryService).find({ username: who.username, limit: 10_000 });
      expect(rows.filter((r) => r.reason === 'rate_limited')).toEqual([]);
      expect(
        rows.filter((r) => r.action.startsWith('blob.') && r.outcome === 'allowed').length,
      ).toBeGreaterThan(5);
      expect(await metrics(gw)).not.toMatch(/gatehouse_rate_limited_total\{[^}]*\} [1-9]/);
      // The three copies fit in a small part of the default budget.
      const v2Requests = rows.filter((r) => /^(manifest|blob|tags)\./.test(r.action)).length;
      expect(v2Requests).toBeLessThan(gw.config.rateLimit.v2PerMember / 10);
    }, 180_000);
  });

  describe('with small limits', () => {
    let gw: TestGateway;
    beforeAll(async () => {
      gw = await createTestGateway({
        env: {
          ...stack.upstreamEnv(),
          RATE_LIMIT_WINDOW_SECONDS: '30',
          RATE_LIMIT_V2_PER_MEMBER: '5',
          RATE_LIMIT_TOKEN_PER_IP: '8',
          RATE_LIMIT_ANONYMOUS_PER_IP: '4',
        },
      });
    });
    afterAll(() => gw?.close());

    it('answers a burst over the member limit with 429 TOOMANYREQUESTS, Retry-After and audit rows', async () => {
      const who = await member(gw, { 'acme/app': ['*'] });
      const t = await token(gw, who, 'repository:acme/app:pull');
      const statuses: number[] = [];
      let limited: Response | undefined;
      for (let i = 0; i < 8; i++) {
        const res = await fetch(`${gw.url}/v2/acme/app/manifests/v1.0.0`, {
          headers: {
            authorization: `Bearer ${t}`,
            accept: 'application/vnd.oci.image.index.v1+json',
            'x-request-id': `burst-${i}`,
          },
        });
        statuses.push(res.status);
        if (res.status === 429) limited ??= res;
        else await res.arrayBuffer();
      }
      expect(statuses).toEqual([200, 200, 200, 200, 200, 429, 429, 429]);
      const retryAfter = Number(limited!.headers.get('retry-after'));
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      expect(retryAfter).toBeLessThanOrEqual(30);
      expect(limited!.headers.get('docker-distribution-api-version')).toBe('registry/2.0');
      expect(await limited!.json()).toEqual({
        errors: [
          {
            code: 'TOOMANYREQUESTS',
            message: `too many requests: retry after ${retryAfter} s`,
            // Every error names its request id for support (apps/gateway oci-exception.filter).
            detail: { requestId: limited!.headers.get('x-request-id'), help: expect.any(String) },
          },
        ],
      });

      await gw.app.get(AuditService).flush(10_000);
      const rows = await gw.app
        .get(AuditQueryService)
        .find({ username: who.username, reason: 'rate_limited' });
      expect(rows).toHaveLength(3);
      for (const row of rows) {
        expect(row).toMatchObject({
          action: 'manifest.get',
          outcome: 'denied',
          httpStatus: 429,
          memberId: who.id,
          repository: 'acme/app',
          reference: 'v1.0.0',
          clientIp: '127.0.0.1',
          details: {
            limiter: 'v2_member',
            limit: 5,
            windowSeconds: 30,
            retryAfterSeconds: expect.any(Number),
          },
        });
      }
      expect(rows.map((r) => r.clientRequestId).sort()).toEqual(['burst-5', 'burst-6', 'burst-7']);
      expect(await metrics(gw)).toMatch(/gatehouse_rate_limited_total\{scope="v2_member"\} 3/);

      // Another member keeps their own budget.
      const other = await member(gw, { 'acme/app': ['*'] });
      const t2 = await token(gw, other, 'repository:acme/app:pull');
      const res = await fetch(`${gw.url}/v2/acme/app/tags/list`, {
        headers: { authorization: `Bearer ${t2}` },
      });
      expect(res.status).toBe(200);
    });

    it('limits unauthenticated /v2/ requests per IP', async () => {
      const statuses: number[] = [];
      for (let i = 0; i < 6; i++) statuses.push((await fetch(`${gw.url}/v2/`)).status);
      expect(statuses).toEqual([401, 401, 401, 401, 429, 429]);
      await gw.app.get(AuditService).flush(10_000);
      const rows = await gw.app
        .get(AuditQueryService)
        .find({ action: 'registry.ping', reason: 'rate_limited' });
      expect(rows).toHaveLength(2);
      expect(rows[0]).toMatchObject({
        memberId: null,
        details: expect.objectContaining({ limiter: 'anonymous_ip' }),
      });
    });

    it('limits the token endpoint per IP (GET and POST together)', async () => {
      const who = await member(gw, { 'acme/app': ['*'] });
      const basic = 'Basic ' + Buffer.from(`${who.username}:${who.key}`).toString('base64');
      const statuses: number[] = [];
      // Three tokens were already fetched from this IP by the tests above.
      for (let i = 0; i < 7; i++) {
        const res =
          i % 2
            ? await fetch(`${gw.url}/auth/token`, {
                method: 'POST',
                headers: { 'content-type': 'application/x-www-form-urlencoded' },
                body: new URLSearchParams({
                  grant_type: 'password',
                  username: who.username,
                  password: who.key,
                  service: gw.host,
                }),
              })
            : await fetch(`${gw.url}/auth/token?service=${gw.host}`, { headers: { authorization: basic } });
        statuses.push(res.status);
        if (res.status === 429) {
          expect(res.headers.get('retry-after')).toMatch(/^\d+$/);
          expect(((await res.json()) as { errors: Array<{ code: string }> }).errors[0].code).toBe(
            'TOOMANYREQUESTS',
          );
        }
      }
      expect(statuses.filter((s) => s === 429).length).toBeGreaterThan(0);
      expect(statuses.slice(statuses.indexOf(429)).every((s) => s === 429)).toBe(true);
      await gw.app.get(AuditService).flush(10_000);
      const rows = await gw.app
        .get(AuditQueryService)
        .find({ action: 'token.refuse', reason: 'rate_limited' });
      expect(rows.length).toBe(statuses.filter((s) => s === 429).length);
      expect(rows[0].details).toMatchObject({ limiter: 'token_ip', limit: 8 });
    });

    it('lets requests through when the limiter storage fails, logs it and counts it', async () => {
      const storage = gw.app.get<ThrottlerStorage>(ThrottlerStorage);
      const who = await member(gw, { 'acme/app': ['*'] });
      const failing = jest
        .spyOn(storage, 'increment')
        .mockRejectedValue(new Error('rate-limit storage unreachable'));
      try {
        // The token endpoint is already over its limit for this IP; with the storage down it opens.
        const t = await token(gw, who, 'repository:acme/app:pull');
        for (let i = 0; i < 10; i++) {
          const res = await fetch(`${gw.url}/v2/acme/app/tags/list`, {
            headers: { authorization: `Bearer ${t}` },
          });
          expect(res.status).toBe(200);
          await res.arrayBuffer();
        }
        for (let i = 0; i < 6; i++) expect((await fetch(`${gw.url}/v2/`)).status).toBe(401);
        expect(failing).toHaveBeenCalledTimes(17);
      } finally {
        failing.mockRestore();
      }
      expect(await metrics(gw)).toMatch(/^gatehouse_rate_limit_storage_failures_total 17$/m);
      const logged = gw.logs.filter((l) => String(l.msg).startsWith('rate limiter storage failed'));
      expect(logged).toHaveLength(1);
      expect(logged[0]).toMatchObject({ level: expect.anything(), err: expect.objectContaining({}) });
    });
  });
});
