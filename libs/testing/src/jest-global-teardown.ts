import { globalFixtures } from './jest-global-setup';

/** Stops what the global setup started, last started first. */
export const globalTeardownSteps: Array<(fixtures: ReturnType<typeof globalFixtures>) => Promise<void>> = [
  async (fixtures) => {
    await fixtures.postgres?.stop();
    fixtures.postgres = undefined;
  },
];

export default async function globalTeardown(): Promise<void> {
  const fixtures = globalFixtures();
  const errors: unknown[] = [];
  for (const step of globalTeardownSteps) await step(fixtures).catch((e: unknown) => errors.push(e));
  if (errors.length > 0) throw errors[0];
}
