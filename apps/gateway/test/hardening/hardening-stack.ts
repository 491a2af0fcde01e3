import { randomUUID } from 'node:crypto';
import { readdir, stat } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import {
  StackMember,
  startUpstreamGatewayStack,
  TestGatewayOptions,
  UpstreamGatewayStack,
} from '@gatehouse/testing/gateway';
import { ForgejoFrontOptions } from '@gatehouse/testing/upstream';

/**
 * The stack every hardening suite needs: the seeded registry behind the Forgejo front, a real
 * gateway in front of that with the per-IP limits off, and helpers to enrol members and to speak
 * raw HTTP to the gateway.
 */
export interface HardeningStack extends Omit<UpstreamGatewayStack, 'member' | 'token'> {
  member(grants: Record<string, string[]>): Promise<Member>;
  token(who: Member, scopes: string[]): Promise<string>;
}

export type Member = Pick<StackMember, 'username' | 'key' | 'basic'>;

/** Settings that keep a suite from tripping the gateway's own per-IP limits (everything is 127.0.0.1). */
export const NO_RATE_LIMITS: Record<string, string> = {
  RATE_LIMIT_V2_PER_MEMBER: '0',
  RATE_LIMIT_TOKEN_PER_IP: '0',
  RATE_LIMIT_ANONYMOUS_PER_IP: '0',
  AUTH_FAILED_LOGINS_PER_IP: '100000',
  AUTH_FAILED_LOGINS_PER_USERNAME: '100000',
};

export async function startHardeningStack(
  options: {
    env?: Record<string, string>;
    front?: Partial<ForgejoFrontOptions>;
    gateway?: Omit<TestGatewayOptions, 'env'>;
  } = {},
): Promise<HardeningStack> {
  const stack = await startUpstreamGatewayStack({
    patLabel: `hardening-${randomUUID()}`,
    keyName: 'hardening',
    frontOptions: options.front,
    gateway: options.gateway,
    gatewayEnv: { ...NO_RATE_LIMITS, ...options.env },
  });
  return {
    ...stack,
    member: (grants) => stack.member('m', grants),
    token: (who, scopes) => stack.token(who, scopes),
  };
}

export interface RawResponse {
  status: number;
  /** Lowercased names; repeated headers joined with ", ". */
  headers: Record<string, string>;
  body: Buffer;
  /** The bytes exactly as received (status line, headers, body). */
  raw: Buffer;
}

/**
 * One request over a fresh TCP connection, bytes exactly as given: no URL parsing, no path
 * normalisation, no header validation. This is how a hostile client talks.
 */
export function rawRequest(
  port: number,
  head: { method?: string; path: string; headers?: Array<[string, string]>; body?: Buffer | string },
  timeoutMs = 10_000,
): Promise<RawResponse> {
  const body = head.body === undefined ? undefined : Buffer.from(head.body);
  const lines = [`${head.method ?? 'GET'} ${head.path} HTTP/1.1`, `Host: 127.0.0.1:${port}`];
  for (const [k, v] of head.headers ?? []) lines.push(`${k}: ${v}`);
  if (body) lines.push(`Content-Length: ${body.length}`);
  lines.push('Connection: close', '', '');
  const request = Buffer.concat([Buffer.from(lines.join('\r\n'), 'latin1'), body ?? Buffer.alloc(0)]);
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no complete answer to ${head.method ?? 'GET'} ${head.path} within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.on('data', (c) => chunks.push(c));
    // A server that resets after answering still answered: parse what came.
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      const raw = Buffer.concat(chunks);
      try {
        resolve(parseResponse(raw));
      } catch (e) {
        reject(e as Error);
      }
    });
    socket.write(request);
  });
}

function parseResponse(raw: Buffer): RawResponse {
  const end = raw.indexOf('\r\n\r\n');
  if (end < 0)
    throw new Error(`not an HTTP response (${raw.length} bytes): ${raw.toString('latin1', 0, 200)}`);
  const [statusLine, ...headerLines] = raw.toString('latin1', 0, end).split('\r\n');
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1]);
  const headers: Record<string, string> = {};
  for (const line of headerLines) {
    const colon = line.indexOf(':');
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
  }
  let body = raw.subarray(end + 4);
  if (headers['transfer-encoding']?.includes('chunked')) body = dechunk(body);
  return { status, headers, body, raw };
}

function dechunk(data: Buffer): Buffer {
  const out: Buffer[] = [];
  let at = 0;
  for (;;) {
    const lineEnd = data.indexOf('\r\n', at);
    if (lineEnd < 0) break;
    const size = parseInt(data.toString('latin1', at, lineEnd), 16);
    if (!size) break;
    out.push(data.subarray(lineEnd + 2, lineEnd + 2 + size));
    at = lineEnd + 2 + size + 2;
  }
  return Buffer.concat(out);
}

/** Every file and directory under `root` with its size and mtime, for before/after comparisons. */
export async function snapshotTree(root: string, maxDepth = 64): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (dir: string, depth = 0): Promise<void> => {
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = join(dir, e.name);
      const s = await stat(p).catch(() => null);
      if (!s) continue;
      out.set(p, e.isDirectory() ? 'dir' : `${s.size}@${s.mtimeMs}`);
      if (e.isDirectory() && depth < maxDepth) await walk(p, depth + 1);
    }
  };
  await walk(root);
  return out;
}

export function treeDifference(before: Map<string, string>, after: Map<string, string>): string[] {
  const changed: string[] = [];
  for (const [p, v] of after) if (before.get(p) !== v) changed.push(`${before.has(p) ? '~' : '+'} ${p}`);
  for (const p of before.keys()) if (!after.has(p)) changed.push(`- ${p}`);
  return changed.sort();
}

export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Open descriptors of this process (Linux). */
export async function openFdCount(pid: number | 'self' = 'self'): Promise<number> {
  return (await readdir(`/proc/${pid}/fd`)).length;
}

/** TCP sockets of this process connected to `port` (either end), from /proc. */
export async function socketsTo(port: number): Promise<number> {
  const { readFile, readlink } = await import('node:fs/promises');
  const inodes = new Set<string>();
  for (const fd of await readdir('/proc/self/fd')) {
    const target = await readlink(`/proc/self/fd/${fd}`).catch(() => '');
    const m = /^socket:\[(\d+)\]$/.exec(target);
    if (m) inodes.add(m[1]);
  }
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  let count = 0;
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    const text = await readFile(file, 'utf8').catch(() => '');
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10) continue;
      const [, local, remote, state] = f;
      // 01 = ESTABLISHED; sockets of this process only.
      if (
        state === '01' &&
        inodes.has(f[9]) &&
        (local.endsWith(`:${hexPort}`) || remote.endsWith(`:${hexPort}`))
      )
        count++;
    }
  }
  return count;
}

export async function waitUntil(
  check: () => Promise<boolean> | boolean,
  ms: number,
  what: string,
): Promise<void> {
  const until = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
