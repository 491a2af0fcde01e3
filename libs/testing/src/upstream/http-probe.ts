import { createHash } from 'node:crypto';
import { request } from 'undici';

export interface ProbeResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
  text: string;
}

/** One HTTP exchange with the body read fully; for small responses in assertions. */
export async function probe(
  url: string,
  options: {
    method?: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'DELETE';
    headers?: Record<string, string>;
    headersTimeout?: number;
  } = {},
): Promise<ProbeResponse> {
  const res = await request(url, {
    method: options.method ?? 'GET',
    headers: options.headers,
    headersTimeout: options.headersTimeout,
  });
  const body = Buffer.from(await res.body.arrayBuffer());
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(res.headers))
    if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(', ') : v;
  return { status: res.statusCode, headers, body, text: body.toString('utf8') };
}

/** Streams a body into sha256 without holding it; returns the digest and the byte count. */
export async function digestOf(
  url: string,
  headers: Record<string, string> = {},
): Promise<{
  status: number;
  digest: string;
  size: number;
  headers: Record<string, string | string[] | undefined>;
}> {
  const res = await request(url, { method: 'GET', headers });
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of res.body) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { status: res.statusCode, digest: 'sha256:' + hash.digest('hex'), size, headers: res.headers };
}

export function basicAuth(username: string, password: string): string {
  return 'Basic ' + Buffer.from(`${username}:${password}`).toString('base64');
}
