import { isSupportedDigest, MANIFEST_MAX_BYTES, MEDIA_TYPES, OciError } from '@gatehouse/oci';
import { UpstreamAuthSession } from './upstream-auth.session';
import { UpstreamBodyReader } from './upstream-body.reader';
import { assertName } from './upstream-exchange';
import { UpstreamFailureReporter } from './upstream-failure.reporter';
import { UpstreamProtocolError } from './upstream.error';

/**
 * Statuses by which a registry says it has no referrers API: Forgejo's catch-all answers 404 with
 * an empty body; others answer 405 (method/route not allowed) or 400 (route not understood).
 */
const NO_REFERRERS_API = new Set([400, 404, 405]);

/**
 * The upstream's own referrers API (`GET /v2/<name>/referrers/<digest>`, OCI distribution-spec
 * 1.1), through the same authenticated session (pull scope of the repository) and failure
 * classification as manifests. `null` means "this upstream has no referrers API"; a 200 must be
 * an image index (JSON with a `manifests` array), bounded like a manifest.
 */
export class UpstreamReferrersFetcher {
  constructor(
    private readonly session: UpstreamAuthSession,
    private readonly body: UpstreamBodyReader,
    private readonly failures: UpstreamFailureReporter,
  ) {}

  async listReferrers(
    name: string,
    digest: string,
    options: { signal?: AbortSignal } = {},
  ): Promise<Buffer | null> {
    assertName(name);
    if (!isSupportedDigest(digest)) throw new OciError('DIGEST_INVALID', { reason: 'reference_invalid' });
    const path = `/v2/${name}/referrers/${digest}`;
    const request = `GET ${path}`;
    const ex = await this.session.send({
      method: 'GET',
      path,
      repository: name,
      accept: MEDIA_TYPES.OCI_INDEX,
      signal: options.signal,
      followRedirects: true,
    });
    if (NO_REFERRERS_API.has(ex.status)) {
      await this.body.snippet(ex);
      return null;
    }
    if (ex.status !== 200) {
      // 401/403 and 5xx are thrown classified, exactly as for manifests; anything else that
      // classifies as "not found" is an upstream without the API too.
      await this.body.notFoundOrThrow(ex, { method: 'GET', path, repository: name });
      return null;
    }
    const body = await this.body.readBounded(
      ex,
      MANIFEST_MAX_BYTES,
      request,
      `referrers list of ${name}@${digest}`,
    );
    let manifests: unknown;
    try {
      manifests = (JSON.parse(body.toString('utf8')) as { manifests?: unknown }).manifests;
    } catch {
      manifests = undefined;
    }
    if (!Array.isArray(manifests)) {
      throw this.failures.fail(
        new UpstreamProtocolError(
          `The upstream answered ${request} with something that is not an image index. Fix: check that FORGEJO_BASE_URL is the registry root and no proxy rewrites answers.`,
          { request, upstreamStatus: 200 },
        ),
      );
    }
    return body;
  }
}
