import { AppLogger } from '@gatehouse/observability';
import { contentLength, Exchange, safeLocation } from './upstream-exchange';
import { classifyUpstreamAnswer } from './upstream-failure.classifier';
import { answerBase, UpstreamFailureReporter } from './upstream-failure.reporter';
import { UpstreamError, UpstreamProtocolError } from './upstream.error';
import { UpstreamNotFound } from './upstream.types';

const ERROR_SNIPPET_BYTES = 2048;

/**
 * Reads upstream answer bodies: bounded buffers for manifests and JSON, the first bytes of an
 * error answer, and the typed not-found or classified error for a non-success status.
 */
export class UpstreamBodyReader {
  constructor(
    private readonly failures: UpstreamFailureReporter,
    private readonly log: AppLogger,
  ) {}

  /** A non-success answer: the typed not-found, or a classified, logged, counted error. */
  async notFoundOrThrow(
    ex: Exchange,
    spec: { method: string; path: string; repository?: string; quiet?: boolean },
  ): Promise<UpstreamNotFound> {
    const snippet = await this.snippet(ex);
    const request = `${spec.method} ${ex.target === 'storage' ? `(redirected) ${safeLocation(ex.url)}` : spec.path.split('?')[0]}`;
    const result = classifyUpstreamAnswer({
      ...answerBase(ex, request, spec.repository),
      bodySnippet: snippet,
    });
    if (result instanceof UpstreamError) throw spec.quiet ? result : this.failures.fail(result);
    if (ex.target === 'storage') {
      this.log.warn(
        { request },
        'The blob storage the upstream redirected to does not have the object (404).',
      );
    }
    return result.code ? { found: false, code: result.code } : { found: false };
  }

  async snippet(ex: Exchange): Promise<string> {
    const chunks: Buffer[] = [];
    let total = 0;
    try {
      for await (const chunk of ex.body) {
        const b = chunk as Buffer;
        chunks.push(b);
        total += b.length;
        if (total >= ERROR_SNIPPET_BYTES) break;
      }
    } catch {
      // The status is what matters; a broken error body is not worth a second failure.
    } finally {
      if (!ex.body.destroyed) ex.body.destroy();
    }
    return Buffer.concat(chunks).subarray(0, ERROR_SNIPPET_BYTES).toString('utf8');
  }

  async readBounded(ex: Exchange, max: number, request: string, what: string): Promise<Buffer> {
    const announced = contentLength(ex.headers);
    if (announced !== undefined && announced > max) {
      ex.body.destroy();
      throw this.failures.fail(
        new UpstreamProtocolError(
          `The upstream ${what} is ${announced} bytes, over the ${max}-byte limit. Fix: none on the gateway side; such a manifest cannot be served.`,
          { request, upstreamStatus: ex.status },
        ),
      );
    }
    const chunks: Buffer[] = [];
    let total = 0;
    try {
      for await (const chunk of ex.body) {
        const b = chunk as Buffer;
        total += b.length;
        if (total > max) {
          ex.body.destroy();
          throw this.failures.fail(
            new UpstreamProtocolError(
              `The upstream ${what} exceeds the ${max}-byte limit. Fix: none on the gateway side; such a manifest cannot be served.`,
              { request, upstreamStatus: ex.status },
            ),
          );
        }
        chunks.push(b);
      }
    } catch (err) {
      if (err instanceof UpstreamError) throw err;
      throw this.failures.fail(this.failures.bodyFailure(err, `${what}`, total, announced, request));
    }
    return Buffer.concat(chunks);
  }

  async readJson(ex: Exchange, max: number, request: string): Promise<unknown> {
    const body = await this.readBounded(ex, max, request, `answer to ${request}`);
    try {
      return JSON.parse(body.toString('utf8'));
    } catch {
      throw this.failures.fail(
        new UpstreamProtocolError(
          `The upstream answered ${request} with invalid JSON. Fix: check that FORGEJO_BASE_URL is the registry root and no proxy rewrites answers.`,
          { request, upstreamStatus: ex.status },
        ),
      );
    }
  }
}
