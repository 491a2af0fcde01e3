import { createHmac, timingSafeEqual } from 'node:crypto';
import { access } from 'node:fs/promises';
import { Injectable } from '@nestjs/common';
import { AuthConfig } from '@gatehouse/config';
import { generateHexSecret, readOrCreateSecretFile, SecretFileError } from './secret-file.util';

/**
 * Hashes access keys with HMAC-SHA256 under a server secret. Keys carry 256 random bits, so a
 * slow password hash buys nothing against guessing; the secret means a stolen database alone
 * cannot be used to test candidate keys. The hash is deterministic, so verification is a single
 * indexed lookup by hash whatever the username: an unknown user and a wrong key cost the same.
 */
@Injectable()
export class AccessKeyHasher {
  constructor(
    private readonly secret: Buffer,
    /** Why there is no secret, for a hasher that may not hash (see `unavailable`). */
    private readonly missing: string | null = null,
  ) {
    if (!missing && secret.length < 32)
      throw new SecretFileError('the access key secret must hold at least 32 bytes');
  }

  /** A hasher for processes that only read (no key is created or checked): hashing throws `why`. */
  static unavailable(why: string): AccessKeyHasher {
    return new AccessKeyHasher(Buffer.alloc(0), why);
  }

  static async fromConfig(auth: AuthConfig): Promise<AccessKeyHasher> {
    if (auth.secretFilesReadOnly && !(await fileExists(auth.accessKeySecretFile)))
      return AccessKeyHasher.unavailable(
        `ACCESS_KEY_SECRET_FILE ${auth.accessKeySecretFile} does not exist and this command does not create it`,
      );
    const text = await readOrCreateSecretFile({
      path: auth.accessKeySecretFile,
      envName: 'ACCESS_KEY_SECRET_FILE',
      fromEnv: auth.accessKeySecretFileFromEnv,
      generate: () => generateHexSecret(32),
    });
    const trimmed = text.trim();
    if (Buffer.byteLength(trimmed) < 32) {
      throw new SecretFileError(
        `ACCESS_KEY_SECRET_FILE ${auth.accessKeySecretFile} holds fewer than 32 bytes. Fix: write at least 32 random bytes, e.g. \`openssl rand -hex 32 > ${auth.accessKeySecretFile}\``,
      );
    }
    return new AccessKeyHasher(Buffer.from(trimmed, 'utf8'));
  }

  hash(key: string): string {
    if (this.missing) throw new SecretFileError(this.missing);
    return createHmac('sha256', this.secret).update(key, 'utf8').digest('hex');
  }

  /**
   * Names the secret without revealing it: an HMAC of a fixed text under it, equal on every
   * replica that holds the same ACCESS_KEY_SECRET_FILE (compared at start by libs/auth); null
   * for a hasher without a secret.
   */
  fingerprint(): string | null {
    if (this.missing) return null;
    return createHmac('sha256', this.secret)
      .update('gatehouse access-key secret fingerprint', 'utf8')
      .digest('hex');
  }

  /**
   * A key for another purpose (e.g. the member tags sent to an upstream Gatehouse), derived from
   * the secret so every replica holding the same ACCESS_KEY_SECRET_FILE derives the same key.
   */
  derivedKey(purpose: string): Buffer {
    if (this.missing) throw new SecretFileError(this.missing);
    return createHmac('sha256', this.secret).update(`gatehouse derived key: ${purpose}`, 'utf8').digest();
  }

  /** Constant-time comparison of two hex hashes of equal length. */
  static sameHash(a: string, b: string): boolean {
    const ba = Buffer.from(a, 'utf8');
    const bb = Buffer.from(b, 'utf8');
    return ba.length === bb.length && timingSafeEqual(ba, bb);
  }
}

async function fileExists(file: string): Promise<boolean> {
  try {
    await access(file);
    return true;
  } catch {
    return false;
  }
}
