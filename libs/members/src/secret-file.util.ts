import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

export interface SecretFileOptions {
  path: string;
  /** The environment variable that set `path`, when an operator set it. */
  envName: string;
  fromEnv: boolean;
  /** Content for a new file; only used when the file is missing and the path is the default. */
  generate: () => string;
}

export class SecretFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SecretFileError';
  }
}

/**
 * Reads a secret file, creating it (mode 0600, exclusively) when it is missing and the path is
 * the default under DATA_DIR. A path the operator set must exist: silently generating a new
 * secret there would invalidate every access key or token without anyone noticing.
 */
export async function readOrCreateSecretFile(options: SecretFileOptions): Promise<string> {
  try {
    return await readFile(options.path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new SecretFileError(
        `${options.envName}: cannot read ${options.path} (${(e as Error).message}). Fix: make the file readable by the gateway user`,
      );
    }
  }
  if (options.fromEnv) {
    throw new SecretFileError(
      `${options.envName} points to ${options.path}, which does not exist. Fix: mount the file there, or unset ${options.envName} to let Gatehouse generate one under DATA_DIR`,
    );
  }
  await mkdir(dirname(options.path), { recursive: true, mode: 0o700 });
  const content = options.generate();
  try {
    // 'wx': when the gateway and the CLI start at once, exactly one of them creates the file.
    await writeFile(options.path, content, { mode: 0o600, flag: 'wx' });
    return content;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return readFile(options.path, 'utf8');
    throw new SecretFileError(
      `cannot create ${options.path} for ${options.envName} (${(e as Error).message}). Fix: make DATA_DIR writable by the gateway user`,
    );
  }
}

export function generateHexSecret(bytes = 32): string {
  return randomBytes(bytes).toString('hex') + '\n';
}
