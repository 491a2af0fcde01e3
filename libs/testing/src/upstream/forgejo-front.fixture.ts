import { ForgejoFront, generatePat, startForgejoFront } from './forgejo-front';
import { basicAuth, probe } from './http-probe';
import { startRegistry, RegistryProcess } from './registry-process';
import { prepareSeededStorage, SeedInfo } from './seed';

// What the Forgejo front's specs share: a seeded registry behind the front (owners acme and the
// private other; a user, customer, who reads only acme), the personal access tokens it knows,
// and how a spec gets a JWT for one and sends it. A spec file calls useSeededForgejoFront() once,
// in its outer describe block; the bindings below are set by its beforeAll (imports of them are
// live), so they are read in hooks and tests, never while the file is collected.

export let seed: SeedInfo;
export let registry: RegistryProcess;
export let front: ForgejoFront;
export const readPat = generatePat('read');
export const noScopePat = generatePat('no-scope');
export const publicOnlyPat = generatePat('public-only');
export const customerPat = generatePat('customer');
export const unknownPat = generatePat('never-issued');
const upstreamCreds = { username: 'forgejo', password: 'storage-pw' };

/** A JWT from the front's token endpoint for the PAT (Basic, empty username by default). */
export const tokenFor = async (pat: string, username = ''): Promise<string> => {
  const res = await probe(`${front.url}/v2/token`, {
    headers: { authorization: basicAuth(username, pat) },
  });
  expect(res.status).toBe(200);
  return JSON.parse(res.text).token as string;
};
export const bearer = (jwt: string): Record<string, string> => ({ authorization: `Bearer ${jwt}` });

/** Registers the front's start (beforeAll) and stop (afterAll) in the calling describe block. */
export function useSeededForgejoFront(): void {
  beforeAll(async () => {
    seed = await prepareSeededStorage();
    registry = await startRegistry({ copyFrom: seed.storageDir, htpasswd: upstreamCreds });
    front = await startForgejoFront({
      upstreamUrl: registry.url,
      upstreamCreds,
      knownOwners: ['acme', 'other'],
      privateOwners: ['other'],
      userOwners: { customer: ['acme'] },
      tokens: {
        [readPat]: { scopes: ['read:package'] },
        [noScopePat]: { scopes: ['read:repository'] },
        [publicOnlyPat]: { scopes: ['public-only', 'read:package'] },
        [customerPat]: { scopes: ['read:package'], user: 'customer' },
      },
    });
  });

  afterAll(async () => {
    await front?.stop();
    await registry?.stop();
  });
}
