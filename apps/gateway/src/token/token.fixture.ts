import { randomUUID } from 'node:crypto';
import { AuditEvent, AuditQueryService, AuditService } from '@gatehouse/audit';
import { RegistryAuthService } from '@gatehouse/auth';
import { EntitlementService } from '@gatehouse/entitlements';
import { AccessKeyService, MemberService } from '@gatehouse/members';
import { createTestGateway, TestGateway } from '@gatehouse/testing/gateway';

// The gateway the token specs share (Fastify, every module, migrations, a real PostgreSQL) and
// the helpers they call it through over HTTP. A spec file calls useTokenGateway() once, in its
// outer describe block; the bindings below are set by its beforeAll (imports of them are live),
// so they are read in hooks and tests, never while the file is collected.

export let gw: TestGateway;
export let members: MemberService;
export let keys: AccessKeyService;
export let entitlements: EntitlementService;
export let registryAuth: RegistryAuthService;

/** Registers the gateway's start (beforeAll) and close (afterAll) in the calling describe block. */
export function useTokenGateway(): void {
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
}

/** A new member with one access key, entitled to each repository with its tag rules. */
export async function member(
  entitled: Record<string, string[]> = {},
): Promise<{ username: string; key: string; keyId: string; memberId: string }> {
  const username = `m-${randomUUID().slice(0, 8)}`;
  const m = await members.create(username);
  const { key, accessKey } = await keys.create(username, { name: 'test' });
  for (const [repo, rules] of Object.entries(entitled)) await entitlements.grant(username, repo, rules);
  return { username, key, keyId: accessKey.id, memberId: m.id };
}

export const basic = (u: string, p: string) => 'Basic ' + Buffer.from(`${u}:${p}`).toString('base64');

/** GET /auth/token for this gateway's service, with the given Authorization and parameters. */
export async function getToken(auth: string | null, params: Array<[string, string]> = []) {
  const qs = new URLSearchParams([['service', gw.host], ...params]).toString();
  const res = await fetch(`${gw.url}/auth/token?${qs}`, { headers: auth ? { authorization: auth } : {} });
  return { res, body: (await res.json()) as Record<string, unknown> };
}

/** The member's audit events, once the audit buffer is written. */
export async function auditRows(username: string): Promise<AuditEvent[]> {
  await gw.app.get(AuditService).flush(10_000);
  return gw.app.get(AuditQueryService).find({ username });
}
