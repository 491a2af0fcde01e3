import {
  computeDigest,
  digestAlgorithm,
  isManifestMediaType,
  isSupportedDigest,
  isValidTag,
  MANIFEST_ACCEPT,
  MANIFEST_MAX_BYTES,
  OciError,
  parseManifest,
} from '@gatehouse/oci';
import { UpstreamAuthSession } from './upstream-auth.session';
import { UpstreamBodyReader } from './upstream-body.reader';
import { assertName, contentLength, first, startDeadline, UpstreamDeadlineError } from './upstream-exchange';
import { UpstreamFailureReporter } from './upstream-failure.reporter';
import { UpstreamError, UpstreamIntegrityError, UpstreamProtocolError } from './upstream.error';
import { UpstreamManifest, UpstreamNotFound } from './upstream.types';

/**
 * Manifests by tag or digest: bounded, digest-checked, typed. Each request has an overall
 * deadline (UPSTREAM_MANIFEST_DEADLINE_MS) besides the idle body timeout, so an upstream that
 * trickles a manifest byte by byte cannot hold a request (and its client) for ever.
 */
export class UpstreamManifestFetcher {
  constructor(
    private readonly session: UpstreamAuthSession,
    private readonly body: UpstreamBodyReader,
    private readonly failures: UpstreamFailureReporter,
    private readonly deadlineMs: number,
  ) {}

  async getManifest(
    name: string,
    reference: string,
    options: { method?: 'GET' | 'HEAD'; signal?: AbortSignal } = {},
  ): Promise<UpstreamManifest | UpstreamNotFound> {
    const deadline = startDeadline(this.deadlineMs, options.signal);
    try {
      return await this.fetch(name, reference, { ...options, signal: deadline.signal });
    } catch (err) {
      // Aborted by the deadline before a body was being read (connecting, headers, a retry pause).
      if (deadline.expired && !options.signal?.aborted && !(err instanceof UpstreamError)) {
        const method = options.method ?? 'GET';
        throw this.failures.fail(
          this.failures.deadlineFailure(
            `${method} /v2/${name}/manifests/${reference}`,
            new UpstreamDeadlineError(this.deadlineMs),
          ),
        );
      }
      throw err;
    } finally {
      deadline.clear();
    }
  }

  private async fetch(
    name: string,
    reference: string,
    options: { method?: 'GET' | 'HEAD'; signal?: AbortSignal } = {},
  ): Promise<UpstreamManifest | UpstreamNotFound> {
    assertName(name);
    const byDigest = reference.includes(':');
    if (byDigest ? !isSupportedDigest(reference) : !isValidTag(reference)) {
      throw new OciError(byDigest ? 'DIGEST_INVALID' : 'MANIFEST_UNKNOWN', { reason: 'reference_invalid' });
    }
    const method = options.method ?? 'GET';
    const path = `/v2/${name}/manifests/${reference}`;
    const request = `${method} ${path}`;
    const ex = await this.session.send({
      method,
      path,
      repository: name,
      accept: MANIFEST_ACCEPT,
      signal: options.signal,
      followRedirects: true,
    });
    if (ex.status !== 200) return this.body.notFoundOrThrow(ex, { method, path, repository: name });

    const contentType = first(ex.headers['content-type'])?.split(';')[0].trim() ?? '';
    const headerDigest = first(ex.headers['docker-content-digest'])?.trim();

    if (method === 'HEAD') {
      await ex.body.dump();
      if (byDigest && headerDigest && headerDigest !== reference) {
        throw this.failures.fail(this.failures.mismatch(name, 'manifest', reference, headerDigest, request));
      }
      const digest = byDigest ? reference : headerDigest;
      if (!digest || !isSupportedDigest(digest)) {
        // A registry that does not announce the digest on HEAD: resolve it from the bytes instead.
        const full = await this.fetch(name, reference, { method: 'GET', signal: options.signal });
        if (!full.found) return full;
        return { found: true, mediaType: full.mediaType, digest: full.digest, size: full.size };
      }
      const size = contentLength(ex.headers);
      if (size === undefined) {
        throw this.failures.fail(
          new UpstreamProtocolError(
            `The upstream registry answered ${request} without Content-Length. Fix: check the proxy in front of FORGEJO_BASE_URL.`,
            { request, upstreamStatus: 200 },
          ),
        );
      }
      return { found: true, mediaType: contentType, digest, size };
    }

    const body = await this.body.readBounded(
      ex,
      MANIFEST_MAX_BYTES,
      request,
      `manifest ${name}:${reference}`,
    );
    const announced = contentLength(ex.headers);
    if (announced !== undefined && announced !== body.length) {
      throw this.failures.fail(
        new UpstreamIntegrityError(
          'truncated',
          `The upstream manifest ${name}:${reference} ended after ${body.length} of ${announced} bytes. Fix: check the network between the gateway and FORGEJO_BASE_URL and the upstream's logs.`,
          { request, upstreamStatus: 200 },
        ),
      );
    }
    const algorithm = byDigest
      ? digestAlgorithm(reference)
      : headerDigest && isSupportedDigest(headerDigest)
        ? digestAlgorithm(headerDigest)
        : 'sha256';
    const digest = computeDigest(body, algorithm);
    const expected = byDigest ? reference : headerDigest;
    if (expected && digest !== expected)
      throw this.failures.fail(this.failures.mismatch(name, 'manifest', expected, digest, request));

    let mediaType = contentType;
    if (!isManifestMediaType(mediaType)) {
      try {
        mediaType = parseManifest(body).mediaType;
      } catch {
        throw this.failures.fail(
          new UpstreamProtocolError(
            `The upstream answered ${request} with something that is not a manifest (Content-Type "${contentType}"). Fix: check that FORGEJO_BASE_URL is the registry root.`,
            { request, upstreamStatus: 200 },
          ),
        );
      }
    }
    return { found: true, body, mediaType, digest, size: body.length };
  }
}
