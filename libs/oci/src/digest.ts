import { createHash, Hash } from 'node:crypto';
import { Transform, TransformCallback } from 'node:stream';
import type { Digest } from './grammar';
import { OciError } from './oci-error';

export function digestAlgorithm(digest: string): 'sha256' | 'sha512' {
  const alg = digest.slice(0, digest.indexOf(':'));
  if (alg !== 'sha256' && alg !== 'sha512') {
    throw new OciError('DIGEST_INVALID', { message: `unsupported digest algorithm ${alg}` });
  }
  return alg;
}

export function computeDigest(data: Buffer | string, algorithm: 'sha256' | 'sha512' = 'sha256'): Digest {
  return `${algorithm}:${createHash(algorithm).update(data).digest('hex')}` as Digest;
}

export class DigestMismatchError extends Error {
  constructor(
    readonly expected: string,
    readonly actual: string,
    readonly expectedSize?: number,
    readonly actualSize?: number,
  ) {
    super(
      expectedSize !== undefined && actualSize !== undefined && expectedSize !== actualSize
        ? `size mismatch for ${expected}: expected ${expectedSize} bytes, got ${actualSize}`
        : `digest mismatch: expected ${expected}, got ${actual}`,
    );
    this.name = 'DigestMismatchError';
  }
}

/**
 * A pass-through stream that hashes what flows through it and fails at the end (instead of
 * ending normally) when the digest or the size is not the expected one. A consumer therefore
 * never mistakes a truncated or corrupted body for a complete one.
 */
export class DigestVerifier extends Transform {
  private readonly algorithm: 'sha256' | 'sha512';
  private readonly hash: Hash;
  private bytes = 0;

  constructor(
    readonly expectedDigest: string,
    readonly expectedSize?: number,
  ) {
    super();
    this.algorithm = digestAlgorithm(expectedDigest);
    this.hash = createHash(this.algorithm);
  }

  get bytesSeen(): number {
    return this.bytes;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.expectedSize !== undefined && this.bytes > this.expectedSize) {
      cb(new DigestMismatchError(this.expectedDigest, 'unknown', this.expectedSize, this.bytes));
      return;
    }
    this.hash.update(chunk);
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    const actual = `${this.algorithm}:${this.hash.digest('hex')}`;
    if (this.expectedSize !== undefined && this.bytes !== this.expectedSize) {
      cb(new DigestMismatchError(this.expectedDigest, actual, this.expectedSize, this.bytes));
    } else if (actual !== this.expectedDigest) {
      cb(new DigestMismatchError(this.expectedDigest, actual));
    } else {
      cb();
    }
  }
}
