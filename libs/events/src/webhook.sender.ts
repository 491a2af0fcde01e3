import { createHmac } from 'node:crypto';
import { Agent, request } from 'undici';
import { guardedLookup } from './webhook-target';

/** Bytes of a receiver's answer read (for the delivery's last error); the rest is dropped. */
export const RESPONSE_BODY_CAP = 4096;

export type SendResult =
  | { ok: true; status: number }
  | { ok: false; status: number | null; error: string; retryAfterMs: number | null; gone: boolean };

export interface SendOptions {
  timeoutMs: number;
  allowPrivateTargets: boolean;
  maxConnections?: number;
}

/**
 * Standard Webhooks signature headers; several secrets (a rotation) give several signatures.
 * `v1,` + base64(HMAC-SHA256(key, "<id>.<timestamp>.<body>")), the key being the secret after
 * `whsec_`, base64-decoded: the spec's scheme, computed with OpenSSL's HMAC, because the
 * `standardwebhooks` package's pure-JS SHA-256 cost 2 % of the event loop at 1,000 deliveries
 * a second. The unit test holds it byte for byte to the package's own `sign`, and receivers in
 * the tests verify with the package.
 */
export function signatureHeaders(
  secrets: string[],
  id: string,
  body: string,
  at: Date,
): Record<string, string> {
  const timestamp = String(Math.floor(at.getTime() / 1000));
  const signatures = secrets.map((s) => {
    const key = Buffer.from(s.startsWith(SECRET_PREFIX) ? s.slice(SECRET_PREFIX.length) : s, 'base64');
    if (key.length === 0) throw new Error('a webhook secret is empty');
    return 'v1,' + createHmac('sha256', key).update(`${id}.${timestamp}.`).update(body).digest('base64');
  });
  return { 'webhook-id': id, 'webhook-timestamp': timestamp, 'webhook-signature': signatures.join(' ') };
}

const SECRET_PREFIX = 'whsec_';

/** `Retry-After` as milliseconds: delta-seconds or an HTTP date; null when absent or unreadable. */
export function parseRetryAfter(value: string | string[] | undefined, now: number): number | null {
  const v = Array.isArray(value) ? value[0] : value;
  if (!v) return null;
  if (/^\s*\d+\s*$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}

/**
 * Posts one signed event. No redirect is followed (a 3xx is a failure), the answer's body is read
 * to RESPONSE_BODY_CAP, the whole attempt is bounded by `timeoutMs`, and the sockets' own DNS
 * lookup refuses private addresses unless allowed.
 */
export class WebhookSender {
  private readonly agent: Agent;

  constructor(private readonly options: SendOptions) {
    this.agent = new Agent({
      connect: { lookup: guardedLookup(options.allowPrivateTargets), timeout: options.timeoutMs },
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
      connections: options.maxConnections ?? 16,
    });
  }

  async send(
    url: string,
    secrets: string[],
    id: string,
    body: string,
    now = new Date(),
  ): Promise<SendResult> {
    const signal = AbortSignal.timeout(this.options.timeoutMs);
    try {
      const res = await request(url, {
        method: 'POST',
        dispatcher: this.agent,
        signal,
        headers: {
          'content-type': 'application/cloudevents+json',
          'user-agent': 'gatehouse-webhooks',
          ...signatureHeaders(secrets, id, body, now),
        },
        body,
      });
      const text = await readCapped(res.body);
      if (res.statusCode >= 200 && res.statusCode < 300) return { ok: true, status: res.statusCode };
      return {
        ok: false,
        status: res.statusCode,
        error: `HTTP ${res.statusCode}${text ? `: ${oneLine(text)}` : ''}`,
        retryAfterMs: parseRetryAfter(res.headers['retry-after'], now.getTime()),
        gone: res.statusCode === 410,
      };
    } catch (e) {
      const err = e as NodeJS.ErrnoException & { cause?: NodeJS.ErrnoException };
      const code = err.code ?? err.cause?.code ?? err.name;
      const reason = signal.aborted
        ? `timed out after ${this.options.timeoutMs} ms`
        : `${code}: ${err.message}`;
      return { ok: false, status: null, error: oneLine(reason), retryAfterMs: null, gone: false };
    }
  }

  async close(): Promise<void> {
    await this.agent.close().catch(() => undefined);
  }

  /** Kept-alive sockets (a CLI `webhook test`) must not hold the process open after it closes. */
  onApplicationShutdown(): Promise<void> {
    return this.close();
  }
}

async function readCapped(body: AsyncIterable<Buffer> & { destroy(): void }): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    chunks.push(chunk);
    size += chunk.length;
    if (size >= RESPONSE_BODY_CAP) {
      body.destroy();
      break;
    }
  }
  return Buffer.concat(chunks).subarray(0, RESPONSE_BODY_CAP).toString('utf8');
}

/** Receiver text is stored and shown in a terminal: control characters become spaces. */
function oneLine(text: string): string {
  return text
    .replace(/[\p{Cc}\p{Cf}]+/gu, ' ')
    .trim()
    .slice(0, 512);
}
