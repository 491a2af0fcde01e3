import { Readable, Transform, TransformCallback } from 'node:stream';
import { DigestVerifier } from '@gatehouse/oci';

/**
 * The body of a full blob as the caller sees it: bytes pass through while being hashed, and the
 * stream fails instead of ending when the upstream body is cut, idles too long, or does not hash
 * to the digest. So a cache that commits on 'finish' only ever commits verified bytes.
 */
export class VerifiedBlobStream extends DigestVerifier {
  constructor(
    source: Readable,
    expectedDigest: string,
    expectedSize: number | undefined,
    private readonly mapError: (err: unknown, bytesSeen: number) => Error,
  ) {
    super(expectedDigest, expectedSize);
    wire(source, this, (err) => this.mapError(err, this.bytesSeen));
  }

  override _transform(chunk: Buffer, enc: BufferEncoding, cb: TransformCallback): void {
    super._transform(chunk, enc, (err, data) =>
      err ? cb(this.mapError(err, this.bytesSeen)) : cb(null, data),
    );
  }

  override _flush(cb: TransformCallback): void {
    super._flush((err) => (err ? cb(this.mapError(err, this.bytesSeen)) : cb()));
  }
}

/** A partial (206) body cannot be hashed against the digest; it must still be exactly as long as announced. */
export class LengthCheckedStream extends Transform {
  private bytes = 0;

  constructor(
    source: Readable,
    private readonly expectedLength: number | undefined,
    private readonly mapError: (err: unknown, bytesSeen: number) => Error,
  ) {
    super();
    wire(source, this, (err) => this.mapError(err, this.bytes));
  }

  get bytesSeen(): number {
    return this.bytes;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.expectedLength !== undefined && this.bytes > this.expectedLength) {
      cb(this.mapError(new Error(`body longer than the announced ${this.expectedLength} bytes`), this.bytes));
      return;
    }
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    if (this.expectedLength !== undefined && this.bytes !== this.expectedLength) {
      cb(
        this.mapError(
          new Error(`body ended after ${this.bytes} of ${this.expectedLength} bytes`),
          this.bytes,
        ),
      );
    } else {
      cb();
    }
  }
}

/**
 * pipe() without its two traps: a source error must fail the output (pipe ignores it), and a
 * consumer that stops reading must release the upstream connection.
 */
function wire(source: Readable, out: Transform, mapError: (err: unknown) => Error): void {
  source.on('error', (err) => {
    if (!out.destroyed) out.destroy(mapError(err));
  });
  out.on('close', () => {
    if (!source.destroyed) source.destroy();
  });
  source.pipe(out);
}
