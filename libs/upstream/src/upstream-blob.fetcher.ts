import { Digest, OciError } from '@gatehouse/oci';
import { UpstreamAuthSession } from './upstream-auth.session';
import { UpstreamBodyReader } from './upstream-body.reader';
import { assertName, contentLength, first } from './upstream-exchange';
import { UpstreamFailureReporter } from './upstream-failure.reporter';
import { UpstreamBlob, UpstreamBlobHead, UpstreamNotFound } from './upstream.types';
import { LengthCheckedStream, VerifiedBlobStream } from './verified-blob.stream';

/** Blob streams (verified or length-checked as they flow) and blob HEADs. */
export class UpstreamBlobFetcher {
  constructor(
    private readonly session: UpstreamAuthSession,
    private readonly body: UpstreamBodyReader,
    private readonly failures: UpstreamFailureReporter,
  ) {}

  /**
   * Streams a blob. Without `range` the body is digest-verified as it flows (and must be
   * `expectedSize` long when given): it errors rather than ends on any shortfall. With `range`
   * the upstream may answer 206 (the range, length-checked) or 200 (it ignored Range, as
   * Forgejo 11 does: the whole blob, verified). `digest` is a checked Digest (the route parse or
   * a manifest descriptor made it), so it goes into the path without a second look.
   */
  async getBlob(
    name: string,
    digest: Digest,
    options: {
      range?: string;
      expectedSize?: number;
      signal?: AbortSignal;
      /**
       * false: the caller hashes the body itself before using it (the blob cache's fill does), so
       * the full body is only checked for its length here instead of being hashed twice.
       */
      verifyDigest?: boolean;
    } = {},
  ): Promise<(UpstreamBlob & { found: true }) | UpstreamNotFound> {
    assertName(name);
    const path = `/v2/${name}/blobs/${digest}`;
    const request = `GET ${path}`;
    const ex = await this.session.send({
      method: 'GET',
      path,
      repository: name,
      range: options.range,
      signal: options.signal,
      followRedirects: true,
    });
    const size = contentLength(ex.headers);
    if (ex.status === 200) {
      const expectedSize = options.expectedSize ?? size;
      if (options.expectedSize !== undefined && size !== undefined && size !== options.expectedSize) {
        await ex.body.dump().catch(() => undefined);
        throw this.failures.fail(
          this.failures.mismatch(
            name,
            'blob',
            digest,
            `a body of ${size} bytes instead of ${options.expectedSize}`,
            request,
          ),
        );
      }
      const mapError = (err: unknown, seen: number) =>
        this.failures.blobStreamError(err, seen, expectedSize, {
          name,
          digest,
          request,
          signal: options.signal,
        });
      const body =
        options.verifyDigest === false
          ? new LengthCheckedStream(ex.body, expectedSize, mapError)
          : new VerifiedBlobStream(ex.body, digest, expectedSize, mapError);
      return { found: true, status: 200, body, size };
    }
    if (ex.status === 206) {
      const contentRange = first(ex.headers['content-range']);
      const body = new LengthCheckedStream(ex.body, size, (err, seen) =>
        this.failures.blobStreamError(err, seen, size, { name, digest, request, signal: options.signal }),
      );
      return { found: true, status: 206, body, size, ...(contentRange ? { contentRange } : {}) };
    }
    if (ex.status === 416) {
      await ex.body.dump().catch(() => undefined);
      const range = first(ex.headers['content-range']);
      throw new OciError('RANGE_INVALID', {
        headers: range ? { 'Content-Range': range } : {},
        reason: 'upstream_range_invalid',
      });
    }
    return this.body.notFoundOrThrow(ex, { method: 'GET', path, repository: name });
  }

  async headBlob(
    name: string,
    digest: Digest,
    options: { signal?: AbortSignal } = {},
  ): Promise<UpstreamBlobHead | UpstreamNotFound> {
    assertName(name);
    const path = `/v2/${name}/blobs/${digest}`;
    const ex = await this.session.send({ method: 'HEAD', path, repository: name, signal: options.signal });
    if (ex.status !== 200) return this.body.notFoundOrThrow(ex, { method: 'HEAD', path, repository: name });
    await ex.body.dump();
    const headerDigest = first(ex.headers['docker-content-digest'])?.trim();
    if (headerDigest && headerDigest !== digest)
      throw this.failures.fail(this.failures.mismatch(name, 'blob', digest, headerDigest, `HEAD ${path}`));
    return { found: true, size: contentLength(ex.headers), digest };
  }
}
