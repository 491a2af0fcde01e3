import './postgres/register-lib-aliases';
import { startTestPostgres, TestPostgres } from './postgres';
import { defaultSeedDir, prepareSeededStorage } from './upstream/seed';

/** What the global setup started, handed to the teardown (same process, different module). */
export interface GlobalFixtures {
  postgres?: TestPostgres;
}

const KEY = '__gatehouseGlobalFixtures__';

export function globalFixtures(): GlobalFixtures {
  const g = globalThis as unknown as Record<string, GlobalFixtures | undefined>;
  g[KEY] ??= {};
  return g[KEY];
}

/**
 * Steps run once before the integration suites, in order. Shared fixtures (servers, seeded
 * images) are one step each; each publishes what workers need through process.env.
 */
export const globalSetupSteps: Array<(fixtures: GlobalFixtures) => Promise<void>> = [
  // Jest runs each project's global setup (integration and browser share this one): one server.
  async (fixtures) => {
    fixtures.postgres ??= await startTestPostgres();
  },
  // Build the seeded test images once, before workers race to do it.
  async () => {
    await prepareSeededStorage();
    process.env.GATEHOUSE_TEST_SEED = defaultSeedDir();
  },
];

export default async function globalSetup(): Promise<void> {
  const fixtures = globalFixtures();
  for (const step of globalSetupSteps) await step(fixtures);
}
