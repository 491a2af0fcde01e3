import { readFileSync } from 'node:fs';
import { join } from 'node:path';

interface LockEntry {
  optionalDependencies?: Record<string, string>;
}

describe('package-lock.json', () => {
  // npm ci refuses a lock file that omits any optional dependency, even one for another
  // platform; `node scripts/complete-lockfile.js` repairs it after an npm install.
  it('has an entry for every optional dependency, so npm ci accepts it', () => {
    const lock = JSON.parse(readFileSync(join(__dirname, '../../../../package-lock.json'), 'utf8')) as {
      packages: Record<string, LockEntry>;
    };
    const missing: string[] = [];
    for (const [key, entry] of Object.entries(lock.packages)) {
      if (!key.startsWith('node_modules/')) continue;
      for (const dep of Object.keys(entry.optionalDependencies ?? {})) {
        if (!lock.packages[`node_modules/${dep}`] && !lock.packages[`${key}/node_modules/${dep}`])
          missing.push(dep);
      }
    }
    expect(missing).toEqual([]);
  });
});
