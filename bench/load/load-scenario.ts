import { randomUUID } from 'node:crypto';
import { chmod } from 'node:fs/promises';
import { join } from 'node:path';
import { EntitlementService } from '@gatehouse/entitlements';
import { AccessKeyService, MemberService } from '@gatehouse/members';
import { createTestDatabase } from '@gatehouse/testing';
import { createTestGateway } from '@gatehouse/testing/gateway';
import {
  generatePat,
  getFreePort,
  makeTempDir,
  prepareSeededStorage,
  seedImage,
  startForgejoFront,
  startRegistry,
} from '@gatehouse/testing/upstream';
import { InspectorSession } from './inspector-session';
import {
  BuiltGateway,
  descriptors,
  footprint,
  LoadResult,
  ProcessFootprint,
  PullTarget,
  runPullLoad,
  startBuiltGateway,
} from './pull-load';

export interface LoadReport {
  clients: number;
  durationMs: number;
  result: LoadResult;
  /** Gateway process after a warm-up pull (caches filled), before the load; garbage collected. */
  baseline: ProcessFootprint;
  /** Highest values sampled every 250 ms during the load (heap with its garbage). */
  peak: ProcessFootprint;
  /** After the load, its connections closed and an idle pause, before any forced collection. */
  afterIdle: ProcessFootprint;
  /** The same moment after forced full collections: the live heap, to compare with `baseline`. */
  after: ProcessFootprint;
  exitCode: number | null;
}

/** The stack a load scenario runs against: the built gateway on a seeded upstream, members enrolled. */
export interface LoadStack {
  gw: BuiltGateway;
  url: string;
  port: number;
  pid: number;
  /** Basic credentials of members `load-0` … `load-9`, each entitled to acme/app v1.* and acme/big. */
  credentials: string[];
  target: PullTarget;
  /** The 100 MB layer of acme/big:1.0. */
  big: { digest: string; size: number };
  stop(): Promise<void>;
}

/** Seeded registry, Forgejo front, a database, members enrolled, the built gateway with `env` on top. */
export async function startLoadStack(env: Record<string, string> = {}): Promise<LoadStack> {
  const seed = await prepareSeededStorage();
  const registry = await startRegistry({ copyFrom: seed.storageDir });
  const pat = generatePat(`load-${randomUUID()}`);
  const front = await startForgejoFront({
    upstreamUrl: registry.url,
    knownOwners: ['acme'],
    tokens: { [pat]: { scopes: ['read:package'] } },
  });
  const db = await createTestDatabase();
  const tmp = await makeTempDir('load');
  const cleanup = async () => {
    await front.stop();
    await registry.stop();
    await db.drop();
    await tmp.cleanup();
  };
  try {
    await chmod(tmp.path, 0o755);
    const dataDir = join(tmp.path, 'data');
    // Members enrolled through the libraries on the same database and DATA_DIR (key secret).
    const setup = await createTestGateway({ databaseUrl: db.url, dataDir });
    const credentials: string[] = [];
    for (let i = 0; i < 10; i++) {
      const username = `load-${i}`;
      await setup.app.get(MemberService).create(username);
      const { key } = await setup.app.get(AccessKeyService).create(username, { name: 'load' });
      await setup.app.get(EntitlementService).grant(username, 'acme/app', ['v1.*']);
      await setup.app.get(EntitlementService).grant(username, 'acme/big', ['*']);
      credentials.push('Basic ' + Buffer.from(`${username}:${key}`).toString('base64'));
    }
    await setup.close();

    const image = seedImage(seed, 'acme/app', 'v1.0.0');
    const target: PullTarget = {
      repository: 'acme/app',
      tag: 'v1.0.0',
      indexDigest: image.digest,
      manifests: image.manifests.map((m) => ({
        digest: m.digest,
        blobs: [m.config.digest, ...m.layers.map((l) => l.digest)],
      })),
    };
    const big = seedImage(seed, 'acme/big', '1.0').manifests[0].layers[0];
    const port = await getFreePort();
    const url = `http://127.0.0.1:${port}`;
    const gw = await startBuiltGateway(
      {
        PORT: String(port),
        HOST: '127.0.0.1',
        DATA_DIR: dataDir,
        DATABASE_URL: db.url,
        FORGEJO_BASE_URL: front.url,
        FORGEJO_API_TOKEN: pat,
        FORGEJO_API_USERNAME: 'gatehouse',
        OCI_REGISTRY_SERVICE: `127.0.0.1:${port}`,
        OCI_REGISTRY_REALM: `${url}/auth/token`,
        LOG_LEVEL: 'warn',
        // Loopback load from one address: the per-IP and per-member limits are not under test.
        RATE_LIMIT_V2_PER_MEMBER: '0',
        RATE_LIMIT_TOKEN_PER_IP: '0',
        RATE_LIMIT_ANONYMOUS_PER_IP: '0',
        ...env,
      },
      url,
    );
    return {
      gw,
      url,
      port,
      pid: gw.child.pid!,
      credentials,
      target,
      big: { digest: big.digest, size: big.size },
      async stop() {
        await gw.stop();
        await cleanup();
      },
    };
  } catch (e) {
    await cleanup();
    throw e;
  }
}

/**
 * The whole load scenario: the stack, a warm-up pull, then `clients` clients for `durationMs`,
 * then the footprint again.
 */
export async function runLoadScenario(clients: number, durationMs: number): Promise<LoadReport> {
  const stack = await startLoadStack();
  try {
    const { gw, pid, url, port, credentials, target } = stack;
    const { inspector } = gw;
    const common = { url, service: `127.0.0.1:${port}`, credentials, target };
    const warm = await runPullLoad({ ...common, clients: 2, durationMs: 500 });
    if (warm.errors > 0) throw new Error(`warm-up failed: ${warm.errorSamples.join('; ')}`);
    await settle(pid);
    const baseline = await footprint(pid, inspector, { collect: true });
    const peak: ProcessFootprint = { ...baseline, collected: false };
    const sampler = samplePeak(pid, inspector, peak);
    let result: LoadResult;
    try {
      result = await runPullLoad({ ...common, clients, durationMs });
    } finally {
      clearInterval(sampler);
    }
    await settle(pid, baseline.fds);
    await new Promise((r) => setTimeout(r, IDLE_MS));
    const afterIdle = await footprint(pid, inspector, { collect: false });
    const after = await footprint(pid, inspector, { collect: true });
    const exitCode = await gw.stop();
    return { clients, durationMs, result, baseline, peak, afterIdle, after, exitCode };
  } finally {
    await stack.stop();
  }
}

/** Raises `peak` to every footprint sampled each 250 ms until the returned timer is cleared. */
export function samplePeak(pid: number, inspector: InspectorSession, peak: ProcessFootprint): NodeJS.Timeout {
  return setInterval(() => {
    footprint(pid, inspector, { collect: false }).then(
      (f) => {
        for (const k of Object.keys(f) as Array<keyof ProcessFootprint>) {
          if (k !== 'collected') peak[k] = Math.max(peak[k], f[k]);
        }
      },
      () => undefined,
    );
  }, 250);
}

/** Pause after the load, as a gateway between bursts of pulls would have. */
const IDLE_MS = 2000;

/** Waits (bounded) until the gateway's descriptors stop changing, or fall to `target`. */
export async function settle(pid: number, target?: number): Promise<void> {
  let last = -1;
  for (let i = 0; i < 40; i++) {
    const fds = await descriptors(pid);
    if (target !== undefined ? fds <= target : fds === last) return;
    last = fds;
    await new Promise((r) => setTimeout(r, 250));
  }
}
