import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuthConfig } from '@gatehouse/config';
import { TokenSigningKey } from './token-signing-key';

describe('TokenSigningKey', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'gatehouse-signing-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  const auth = (file: string, fromEnv: boolean) =>
    ({ signingKeyFile: file, signingKeyFileFromEnv: fromEnv }) as AuthConfig;

  it('generates a P-256 key once (0600) and keeps its kid across restarts', async () => {
    const file = join(dir, 'token-signing-key.pem');
    const a = await TokenSigningKey.fromConfig(auth(file, false));
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readFileSync(file, 'utf8')).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    const b = await TokenSigningKey.fromConfig(auth(file, false));
    expect(b.kid).toBe(a.kid);
    expect(a.kid).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it('refuses a missing file the operator named', async () => {
    await expect(TokenSigningKey.fromConfig(auth(join(dir, 'nope.pem'), true))).rejects.toThrow(
      /TOKEN_SIGNING_KEY_FILE points to/,
    );
  });

  it('refuses a key that is not EC P-256', async () => {
    const file = join(dir, 'rsa.pem');
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    writeFileSync(file, privateKey.export({ type: 'pkcs8', format: 'pem' }));
    await expect(TokenSigningKey.fromConfig(auth(file, true))).rejects.toThrow(/must be an EC P-256 key/);
    writeFileSync(file, 'garbage');
    await expect(TokenSigningKey.fromConfig(auth(file, true))).rejects.toThrow(/not a PEM private key/);
  });
});
