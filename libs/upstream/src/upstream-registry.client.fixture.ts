import { Writable } from 'node:stream';
import { createHash } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import type { UpstreamConfig } from '@gatehouse/config';
import { createCapturingLogger, MetricsService } from '@gatehouse/observability';
import {
  ForgejoFront,
  FrontRequestRecord,
  generatePat,
  prepareSeededStorage,
  RegistryProcess,
  SeedInfo,
  startForgejoFront,
  startRegistry,
} from '@gatehouse/testing/upstream';
import { Clock } from '@gatehouse/observability';
import { UpstreamHealth } from './upstream-health.service';
import { UpstreamRegistryClient } from './upstream-registry.client';
import { config as fakeConfig } from './testing/upstream-fakes';
import { UpstreamBlob } from './upstream.types';

// What the UpstreamRegistryClient specs share: clients with a captured log, metrics and a clock
// to move, and the real test upstream they run against: a CNCF distribution registry (Basic,
// htpasswd) and the Forgejo front in front of it (Bearer challenge, {"token"} answers, Forgejo's
// text errors, serve-direct 307s to a storage origin that refuses Authorization).

export class FakeClock extends Clock {
  offset = 0;
  override now(): number {
    return Date.now() + this.offset;
  }
}

export interface Harness {
  client: UpstreamRegistryClient;
  clock: FakeClock;
  health: UpstreamHealth;
  errorLines(): Array<Record<string, unknown>>;
  raw(): string;
  failures(reason: string): Promise<number>;
}

export type HarnessFactory = (baseUrl: string, token: string, over?: Partial<UpstreamConfig>) => Harness;

/**
 * Registers, in the calling spec file, an afterEach that closes every client made since; returns
 * the factory of those clients.
 */
export function useClientHarness(): HarnessFactory {
  const clients: UpstreamRegistryClient[] = [];
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
  });

  function harness(baseUrl: string, token: string, over: Partial<UpstreamConfig> = {}): Harness {
    const { logger, lines, raw } = createCapturingLogger('debug');
    const metrics = new MetricsService();
    const clock = new FakeClock();
    // The unit fakes' settings, with this suite's timeouts, pool and retries.
    const config: UpstreamConfig = {
      ...fakeConfig(baseUrl),
      token,
      headersTimeoutMs: 5000,
      bodyTimeoutMs: 5000,
      maxConnections: 8,
      retries: 1,
      ...over,
    };
    const client = new UpstreamRegistryClient(config, logger, metrics, clock, { retryBaseDelayMs: 5 });
    clients.push(client);
    return {
      client,
      clock,
      health: new UpstreamHealth(client, logger, clock, { ttlMs: 30_000 }),
      errorLines: () => lines().filter((l) => l.level === 'error'),
      raw,
      failures: async (reason) => {
        const m = await metrics.registry.getSingleMetric('gatehouse_upstream_failures_total')!.get();
        return m.values.find((v) => v.labels.reason === reason)?.value ?? 0;
      },
    };
  }
  return harness;
}

export async function drain(blob: UpstreamBlob, onFirstChunk?: () => Promise<void> | void): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let first = true;
  await pipeline(
    blob.body,
    new Writable({
      write(c, _e, cb) {
        chunks.push(c as Buffer);
        if (first && onFirstChunk) {
          first = false;
          Promise.resolve(onFirstChunk()).then(() => cb(), cb);
          return;
        }
        cb();
      },
    }),
  );
  return Buffer.concat(chunks);
}

export const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

export const GENERIC_502 = {
  errors: [{ code: 'UPSTREAM_ERROR', message: 'the upstream registry could not serve this request' }],
};

export const LINES = {
  tokenInvalid:
    'Forgejo rejected the service token (401 authGroup.Verify): FORGEJO_API_TOKEN is invalid, expired or revoked. Fix: create a new token with scope read:package for the user that can read the owner and set FORGEJO_API_TOKEN.',
  missingScope: (owner: string) =>
    `Forgejo refused the service token for owner "${owner}" (401 reqPackageAccess): FORGEJO_API_TOKEN lacks the read:package scope, or its user cannot read the owner "${owner}". Fix: create a token with scope read:package for a user that can read "${owner}" (the owner itself, a member of the organisation, or a site admin) and set FORGEJO_API_TOKEN.`,
  publicOnly: (owner: string) =>
    `Forgejo refused the service token for owner "${owner}" (403 reqToken): FORGEJO_API_TOKEN is a public-only token and "${owner}" is private. Fix: create a token without the public-only restriction, with scope read:package, and set FORGEJO_API_TOKEN.`,
  ownerUnknown: (owner: string, repo: string) =>
    `Forgejo does not know the owner "${owner}" (404 Not found.): it does not exist, was renamed, or is not visible to the user of FORGEJO_API_TOKEN. Fix: correct the owner of "${repo}" in the entitlement, or give the user of FORGEJO_API_TOKEN access to "${owner}".`,
  basicRefused:
    'The upstream registry at FORGEJO_BASE_URL rejected the service credentials (401 Basic realm="gatehouse-test"): FORGEJO_API_USERNAME / FORGEJO_API_TOKEN are wrong or revoked. Fix: set FORGEJO_API_USERNAME and FORGEJO_API_TOKEN to a user and password (or token) that the registry accepts.',
};

// The Forgejo front below: a spec file calls useForgejoFrontUpstream() once, in the describe
// block of its tests; these bindings are set by its beforeAll (imports of them are live), so
// they are read in hooks and tests, never while the file is collected.
export let seed: SeedInfo;
export let registry: RegistryProcess;
export let front: ForgejoFront;
const storageCreds = { username: 'forgejo', password: 'storage-pw' };
export const readPat = generatePat('upstream-read');
export const noScopePat = generatePat('upstream-no-scope');
export const publicOnlyPat = generatePat('upstream-public-only');
export const outsiderPat = generatePat('upstream-outsider');
export const unknownPat = generatePat('upstream-never-issued');

/**
 * Registers, in the calling describe block, the start and stop of a seeded registry behind the
 * Forgejo front (owners acme and the private other; a user, outsider, who reads only acme), and
 * a beforeEach that turns serve-direct off and resets the front's request counts.
 */
export function useForgejoFrontUpstream(): void {
  beforeAll(async () => {
    seed = await prepareSeededStorage();
    registry = await startRegistry({ copyFrom: seed.storageDir, htpasswd: storageCreds });
    front = await startForgejoFront({
      upstreamUrl: registry.url,
      upstreamCreds: storageCreds,
      knownOwners: ['acme', 'other'],
      privateOwners: ['other'],
      userOwners: { outsider: ['acme'] },
      tokens: {
        [readPat]: { scopes: ['read:package'] },
        [noScopePat]: { scopes: ['read:repository'] },
        [publicOnlyPat]: { scopes: ['public-only', 'read:package'] },
        [outsiderPat]: { scopes: ['read:package'], user: 'outsider' },
      },
    });
  });

  afterAll(async () => {
    await front?.stop();
    await registry?.stop();
  });

  beforeEach(() => {
    front.setServeDirect(false);
    front.resetCounts();
  });
}

/** How many token requests the front answered since the test began. */
export const tokenRequests = () => front.countRequests((r: FrontRequestRecord) => r.kind === 'token');
