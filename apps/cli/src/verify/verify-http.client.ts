import { createHash } from 'node:crypto';
import { Agent, fetch, Response } from 'undici';

export interface HttpReply {
  status: number;
  headers: Headers;
  body: string;
}

export interface HttpRequest {
  method?: string;
  headers?: Record<string, string>;
  body?: string;
}

/** A request that never got an HTTP answer (refused, timed out, TLS, DNS). */
export class HttpUnreachableError extends Error {
  constructor(
    readonly url: string,
    readonly reason: string,
  ) {
    // Without the query: it repeats what the row already says and can be long.
    super(`${url.split('?', 1)[0]} unreachable: ${reason}`);
    this.name = 'HttpUnreachableError';
  }
}

type Headers = Response['headers'];

/**
 * The verifier's only HTTP edge. Its own connection pool, closed at the end, so a run leaves no
 * sockets behind; redirects are followed, as clients follow Forgejo's to object storage.
 */
export class VerifyHttpClient {
  private readonly agent: Agent;

  constructor(private readonly timeoutMs: number) {
    this.agent = new Agent({
      connect: { timeout: timeoutMs },
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    });
  }

  /** A whole (small) body as text: challenges, tokens, manifests, envelopes, metrics. */
  async text(url: string | URL, request: HttpRequest = {}): Promise<HttpReply & { bytes: Buffer }> {
    const res = await this.send(url, request);
    let bytes: Buffer;
    try {
      bytes = Buffer.from(await res.arrayBuffer());
    } catch (e) {
      throw new HttpUnreachableError(String(url), `body cut off: ${causeOf(e)}`);
    }
    return { status: res.status, headers: res.headers, body: bytes.toString('utf8'), bytes };
  }

  /**
   * A blob: hashed while it streams (never held in memory). On a non-2xx status the body is read
   * as text instead, for the evidence.
   */
  async hashed(
    url: string | URL,
    algorithm: 'sha256' | 'sha512',
    request: HttpRequest = {},
  ): Promise<{ status: number; headers: Headers; digest: string; size: number; body: string }> {
    const res = await this.send(url, request);
    if (res.status < 200 || res.status > 299) {
      const body = await res.text().catch(() => '');
      return { status: res.status, headers: res.headers, digest: '', size: 0, body };
    }
    const hash = createHash(algorithm);
    let size = 0;
    try {
      if (res.body) {
        for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
          size += chunk.length;
          hash.update(chunk);
        }
      }
    } catch (e) {
      throw new HttpUnreachableError(String(url), `body cut off after ${size} bytes: ${causeOf(e)}`);
    }
    return {
      status: res.status,
      headers: res.headers,
      digest: `${algorithm}:${hash.digest('hex')}`,
      size,
      body: '',
    };
  }

  close(): Promise<void> {
    return this.agent.close();
  }

  private async send(url: string | URL, request: HttpRequest): Promise<Response> {
    try {
      return await fetch(url, {
        method: request.method ?? 'GET',
        headers: { 'user-agent': 'gatehouse-verify-oci', ...request.headers },
        body: request.body,
        redirect: 'follow',
        dispatcher: this.agent,
      });
    } catch (e) {
      throw new HttpUnreachableError(String(url), causeOf(e));
    }
  }
}

/** `ECONNREFUSED 127.0.0.1:1` rather than undici's "fetch failed". */
export function causeOf(e: unknown): string {
  const err = e as { cause?: unknown; code?: string; message?: string } | null;
  const cause = err?.cause as { code?: string; message?: string; cause?: unknown } | undefined;
  if (cause) {
    if (cause.code && cause.message && !cause.message.includes(cause.code))
      return `${cause.code} ${cause.message}`;
    return cause.message ?? cause.code ?? String(cause);
  }
  return err?.message ?? String(e);
}
