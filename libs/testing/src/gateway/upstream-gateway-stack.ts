import { randomUUID } from 'node:crypto';
import { EntitlementService } from '@gatehouse/entitlements';
import { AccessKeyService, MemberService } from '@gatehouse/members';
import {
  ForgejoFront,
  ForgejoFrontOptions,
  generatePat,
  prepareSeededStorage,
  RegistryProcess,
  SeedInfo,
  startForgejoFront,
  startRegistry,
} from '../upstream';
import { createTestGateway, TestGateway, TestGatewayOptions } from './create-test-gateway';

export interface UpstreamGatewayStackOptions {
  /** Gateway settings on top of the upstream ones (they may override those too). */
  gatewayEnv?: Record<string, string>;
  /** Overrides for the Forgejo front; owners `acme` and `other` exist and the service token may read packages. */
  frontOptions?: Partial<ForgejoFrontOptions>;
  /** Everything else createTestGateway takes (database, DATA_DIR). */
  gateway?: Omit<TestGatewayOptions, 'env'>;
  /** A label makes the service token the same on every run; without one it is random. */
  patLabel?: string;
  /** The name given to every member's access key. */
  keyName?: string;
}

export interface StackMember {
  id: string;
  username: string;
  /** The access key secret, the member's password. */
  key: string;
  /** `Basic <username:key>`, ready for an Authorization header. */
  basic: string;
}

/**
 * What an end-to-end suite stands on: the seeded registry (Debian's docker-registry) behind the
 * Forgejo front, a real gateway in front of that with one service token, and members enrolled
 * through the gateway's own services.
 */
export interface UpstreamGatewayStack {
  seed: SeedInfo;
  registry: RegistryProcess;
  front: ForgejoFront;
  /** The service token the gateway uses upstream: it must never reach a member or a log. */
  pat: string;
  gw: TestGateway;
  /**
   * The settings that point a gateway at this front, for suites that start more gateways on the
   * same upstream (other limits, a broken realm, another token).
   */
  upstreamEnv(token?: string): Record<string, string>;
  /** A new member `<name>-<random>` with one access key and these grants (repository → tag rules). */
  member(name: string, grants: Record<string, string[]>, on?: TestGateway): Promise<StackMember>;
  /** A registry token for these scopes, through GET /auth/token; throws unless it answers 200. */
  token(who: Pick<StackMember, 'username' | 'basic'>, scopes: string[], on?: TestGateway): Promise<string>;
  /** Stops the gateway, the front and the registry (not gateways the suite started itself). */
  stop(): Promise<void>;
}

function upstreamEnvFor(front: ForgejoFront, token: string): Record<string, string> {
  return {
    FORGEJO_BASE_URL: front.url,
    FORGEJO_API_TOKEN: token,
    FORGEJO_API_USERNAME: 'gatehouse',
    UPSTREAM_RETRIES: '0',
  };
}

export async function startUpstreamGatewayStack(
  options: UpstreamGatewayStackOptions = {},
): Promise<UpstreamGatewayStack> {
  const seed = await prepareSeededStorage();
  const pat = generatePat(options.patLabel);
  let registry: RegistryProcess | undefined;
  let front: ForgejoFront | undefined;
  let gw: TestGateway;
  try {
    registry = await startRegistry({ copyFrom: seed.storageDir });
    front = await startForgejoFront({
      upstreamUrl: registry.url,
      knownOwners: ['acme', 'other'],
      tokens: { [pat]: { scopes: ['read:package'] } },
      ...options.frontOptions,
    });
    gw = await createTestGateway({
      ...options.gateway,
      env: { ...upstreamEnvFor(front, pat), ...options.gatewayEnv },
    });
  } catch (e) {
    // A suite whose beforeAll fails never gets a stack to stop: leave no process behind.
    await front?.stop();
    await registry?.stop();
    throw e;
  }
  const upstreamEnv = (token = pat) => upstreamEnvFor(front!, token);
  const keyName = options.keyName ?? 'test';

  return {
    seed,
    registry: registry!,
    front: front!,
    pat,
    gw,
    upstreamEnv,
    async member(name, grants, on = gw) {
      const username = `${name}-${randomUUID().slice(0, 8)}`;
      const m = await on.app.get(MemberService).create(username);
      const { key } = await on.app.get(AccessKeyService).create(username, { name: keyName });
      for (const [repository, rules] of Object.entries(grants))
        await on.app.get(EntitlementService).grant(username, repository, rules);
      return {
        id: m.id,
        username,
        key,
        basic: 'Basic ' + Buffer.from(`${username}:${key}`).toString('base64'),
      };
    },
    async token(who, scopes, on = gw) {
      const qs = new URLSearchParams([
        ['service', on.host],
        ...scopes.map((s): [string, string] => ['scope', s]),
      ]);
      const res = await fetch(`${on.url}/auth/token?${qs}`, { headers: { authorization: who.basic } });
      if (res.status !== 200) throw new Error(`token for ${who.username}: ${res.status} ${await res.text()}`);
      return ((await res.json()) as { token: string }).token;
    },
    async stop() {
      await gw.close();
      await front!.stop();
      await registry!.stop();
    },
  };
}
