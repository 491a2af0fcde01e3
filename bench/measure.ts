import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Agent, request } from 'undici';

/** Milliseconds since an arbitrary origin, monotonic. */
export const now = (): number => performance.now();

export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank];
}

export const median = (values: number[]): number => percentile(values, 50);

export const ACCEPT_MANIFESTS = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(', ');

export interface PullTiming {
  totalMs: number;
  /** From sending the layer request to its first body byte. */
  layerFirstByteMs: number;
  /** From the start of the pull to the layer's first body byte. */
  pullFirstByteMs: number;
  bytes: number;
}

/**
 * A pull as a client makes it once it holds credentials: manifest by tag, then its config and
 * layer (one layer: sequential), bodies read to the end and discarded.
 */
export async function pullImage(
  baseUrl: string,
  repository: string,
  tag: string,
  authorization: string,
): Promise<PullTiming> {
  const agent = new Agent({ connections: 4 });
  const get = (path: string, accept?: string) =>
    request(`${baseUrl}/v2/${repository}/${path}`, {
      dispatcher: agent,
      headers: { authorization, ...(accept ? { accept } : {}) },
      headersTimeout: 120_000,
      bodyTimeout: 120_000,
    });
  try {
    const t0 = now();
    const m = await get(`manifests/${tag}`, ACCEPT_MANIFESTS);
    if (m.statusCode !== 200) throw new Error(`manifest: ${m.statusCode} ${await m.body.text()}`);
    const manifest = (await m.body.json()) as {
      config: { digest: string };
      layers: Array<{ digest: string }>;
    };
    const c = await get(`blobs/${manifest.config.digest}`);
    if (c.statusCode !== 200) throw new Error(`config: ${c.statusCode}`);
    let bytes = (await c.body.arrayBuffer()).byteLength;
    const tLayer = now();
    const l = await get(`blobs/${manifest.layers[0].digest}`);
    if (l.statusCode !== 200) throw new Error(`layer: ${l.statusCode}`);
    let firstByte = 0;
    for await (const chunk of l.body) {
      if (firstByte === 0) firstByte = now();
      bytes += (chunk as Buffer).length;
    }
    const end = now();
    return {
      totalMs: end - t0,
      layerFirstByteMs: firstByte - tLayer,
      pullFirstByteMs: firstByte - t0,
      bytes,
    };
  } finally {
    await agent.close();
  }
}

/** `count` simultaneous GETs of one URL on separate connections; the sha256 of each body. */
export async function concurrentDigests(
  url: string,
  authorization: string,
  count: number,
): Promise<{ digests: string[]; statuses: number[]; ms: number }> {
  const agent = new Agent({ connections: count, pipelining: 0 });
  try {
    const t0 = now();
    const results = await Promise.all(
      Array.from({ length: count }, async () => {
        const res = await request(url, {
          dispatcher: agent,
          headers: { authorization },
          headersTimeout: 120_000,
          bodyTimeout: 120_000,
        });
        const hash = createHash('sha256');
        for await (const chunk of res.body) hash.update(chunk as Buffer);
        return { status: res.statusCode, digest: `sha256:${hash.digest('hex')}` };
      }),
    );
    return { digests: results.map((r) => r.digest), statuses: results.map((r) => r.status), ms: now() - t0 };
  } finally {
    await agent.close();
  }
}

/** Resident set size of a process in bytes (VmRSS), or the peak so far (VmHWM). */
export function processMemory(pid: number): { rss: number; hwm: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) =>
    Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

/** Samples a process's RSS every `intervalMs` until stopped; returns the highest sample. */
export function sampleRss(pid: number, intervalMs = 20): { stop(): { peak: number; samples: number } } {
  let peak = 0;
  let samples = 0;
  const timer = setInterval(() => {
    try {
      peak = Math.max(peak, processMemory(pid).rss);
      samples++;
    } catch {
      // the process is gone; the caller notices
    }
  }, intervalMs);
  return {
    stop() {
      clearInterval(timer);
      return { peak, samples };
    },
  };
}

export function machine(): Record<string, string> {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const meminfo = readFileSync('/proc/meminfo', 'utf8');
  const memKb = Number(/^MemTotal:\s+(\d+)/m.exec(meminfo)?.[1] ?? 0);
  return {
    nproc: String(cpuinfo.match(/^processor\s*:/gm)?.length ?? 0),
    cpu: /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? 'unknown',
    memory: `${(memKb / 1024 / 1024).toFixed(1)} GiB`,
    node: process.version,
    kernel: readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim(),
  };
}

export function loadAverage(): string {
  return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
}
