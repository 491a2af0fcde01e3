import { WebSocket } from 'undici';

/** `process.memoryUsage()` of the inspected process. */
export interface MemoryUsage {
  rss: number;
  heapTotal: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
}

/**
 * A minimal Chrome DevTools Protocol client for a child started with `--inspect=127.0.0.1:0`.
 * From outside, nothing else can make the child collect garbage, so the heap it reports would
 * mix live objects with garbage; `HeapProfiler.collectGarbage` makes "heap used" mean "live".
 * undici's WebSocket is used because Node 20 has a global one only behind a flag.
 */
export class InspectorSession {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();

  private constructor(private readonly socket: WebSocket) {
    socket.addEventListener('message', (event) => {
      const message = JSON.parse(String(event.data)) as {
        id?: number;
        result?: unknown;
        error?: { message: string };
      };
      const call = message.id === undefined ? undefined : this.pending.get(message.id);
      if (!call) return;
      this.pending.delete(message.id!);
      if (message.error) call.reject(new Error(`inspector: ${message.error.message}`));
      else call.resolve(message.result);
    });
    socket.addEventListener('close', () => {
      for (const call of this.pending.values()) call.reject(new Error('inspector: connection closed'));
      this.pending.clear();
    });
  }

  static async connect(url: string): Promise<InspectorSession> {
    const socket = new WebSocket(url);
    await new Promise<void>((resolve, reject) => {
      socket.addEventListener('open', () => resolve(), { once: true });
      socket.addEventListener('error', () => reject(new Error(`inspector: cannot connect to ${url}`)), {
        once: true,
      });
    });
    return new InspectorSession(socket);
  }

  send<T = unknown>(method: string, params: Record<string, unknown> = {}): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.socket.send(JSON.stringify({ id, method, params }));
    });
  }

  /** Full collections; twice, so objects freed by the first one's finalizers go too. */
  async collectGarbage(): Promise<void> {
    await this.send('HeapProfiler.collectGarbage');
    await this.send('HeapProfiler.collectGarbage');
  }

  async memoryUsage(): Promise<MemoryUsage> {
    const { result, exceptionDetails } = await this.send<{
      result: { value?: string };
      exceptionDetails?: { text: string };
    }>('Runtime.evaluate', { expression: 'JSON.stringify(process.memoryUsage())', returnByValue: true });
    if (exceptionDetails || typeof result.value !== 'string') {
      throw new Error(`inspector: process.memoryUsage() failed: ${exceptionDetails?.text ?? 'no value'}`);
    }
    return JSON.parse(result.value) as MemoryUsage;
  }

  /**
   * Closes the session. Must happen before the child is stopped: a Node process with a debugger
   * attached waits for it to disconnect before it exits.
   */
  async close(): Promise<void> {
    if (this.socket.readyState === WebSocket.CLOSED) return;
    await new Promise<void>((resolve) => {
      this.socket.addEventListener('close', () => resolve(), { once: true });
      this.socket.close();
    });
  }
}

/** The inspector URL a child started with `--inspect=…:0` printed on its stderr, once it has. */
export function inspectorUrl(stderr: string): string | undefined {
  return /Debugger listening on (ws:\/\/\S+)/.exec(stderr)?.[1];
}
