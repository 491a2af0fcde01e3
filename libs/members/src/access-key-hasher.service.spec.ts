import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuthConfig } from '@gatehouse/config';
import { AccessKeyHasher } from './access-key-hasher.service';

describe('AccessKeyHasher', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'gatehouse-hasher-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const auth = (file: string, fromEnv: boolean) =>
    ({ accessKeySecretFile: file, accessKeySecretFileFromEnv: fromEnv }) as AuthConfig;

  it('generates the secret once with mode 0600 and reuses it', async () => {
    const file = join(dir, 'sub', 'access-key-secret');
    const a = await AccessKeyHasher.fromConfig(auth(file, false));
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const b = await AccessKeyHasher.fromConfig(auth(file, false));
    expect(a.hash('ghk_x')).toBe(b.hash('ghk_x'));
    expect(a.hash('ghk_x')).toMatch(/^[0-9a-f]{64}$/);
    expect(a.hash('ghk_x')).not.toBe(a.hash('ghk_y'));
  });

  it('refuses to invent a secret at a path the operator set', async () => {
    await expect(AccessKeyHasher.fromConfig(auth(join(dir, 'missing'), true))).rejects.toThrow(
      /ACCESS_KEY_SECRET_FILE points to .* which does not exist/,
    );
  });

  it('refuses a short secret', async () => {
    const file = join(dir, 'short');
    writeFileSync(file, 'tooshort\n');
    await expect(AccessKeyHasher.fromConfig(auth(file, true))).rejects.toThrow(/fewer than 32 bytes/);
  });

  it('a different secret gives different hashes', () => {
    expect(new AccessKeyHasher(Buffer.alloc(32, 1)).hash('k')).not.toBe(
      new AccessKeyHasher(Buffer.alloc(32, 2)).hash('k'),
    );
  });

  it('compares hashes of equal and unequal length', () => {
    expect(AccessKeyHasher.sameHash('ab', 'ab')).toBe(true);
    expect(AccessKeyHasher.sameHash('ab', 'ac')).toBe(false);
    expect(AccessKeyHasher.sameHash('ab', 'abc')).toBe(false);
  });
});
