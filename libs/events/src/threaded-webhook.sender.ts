import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { AppLogger } from '@gatehouse/observability';
import { SendOptions, SendResult, WebhookSender } from './webhook.sender';

/** What the events worker needs of a sender: WebhookSender in process, or this one's thread. */
export interface WebhookPoster {
  send(url: string, secrets: string[], id: string, body: string, now?: Date): Promise<SendResult>;
  close(): Promise<void>;
}

interface SendRequest {
  n: number;
  url: string;
  secrets: string[];
  id: string;
  body: string;
  at: number;
}

export type ThreadMessage = { type: 'send'; batch: SendRequest[] } | { type: 'close' };

/** The compiled thread entry; absent when the sources run untranspiled (ts-jest). */
const THREAD_ENTRY = join(__dirname, 'webhook-sender.thread.js');

/**
 * A WebhookSender whose requests run on a worker thread: signing, the HTTP exchange and reading
 * the answer cost the gateway's event loop, which serves the pulls, one message each way per
 * batch instead (at 1,000 deliveries a second they were a tenth of that loop, and the pulls'
 * p99 showed it: figure 11 in dev-docs/performance.md). Requests made in one turn of the loop
 * go over in one message. A thread that dies fails its requests (they are retried like any
 * failed delivery) and the next request starts a new one; one that does not answer within the
 * timeout plus 5 s fails them too.
 */
export class ThreadedWebhookSender implements WebhookPoster {
  private worker: Worker | null = null;
  private readonly pending = new Map<number, { resolve: (r: SendResult) => void; timer: NodeJS.Timeout }>();
  private queued: SendRequest[] = [];
  private scheduled = false;
  private next = 0;

  constructor(
    private readonly options: SendOptions,
    private readonly logger: AppLogger,
    private readonly entry = THREAD_ENTRY,
  ) {}

  /** The threaded sender where the compiled entry exists, else WebhookSender in process. */
  static create(options: SendOptions, logger: AppLogger): WebhookPoster {
    return existsSync(THREAD_ENTRY) ? new ThreadedWebhookSender(options, logger) : new WebhookSender(options);
  }

  send(url: string, secrets: string[], id: string, body: string, now = new Date()): Promise<SendResult> {
    return new Promise((resolve) => {
      const n = ++this.next;
      const timer = setTimeout(
        () => this.settle(n, failure('the delivery thread did not answer in time')),
        this.options.timeoutMs + 5_000,
      );
      this.pending.set(n, { resolve, timer });
      this.queued.push({ n, url, secrets, id, body, at: now.getTime() });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  async close(): Promise<void> {
    const w = this.worker;
    if (!w) return;
    const exited = new Promise<void>((r) => w.once('exit', () => r()));
    w.postMessage({ type: 'close' } satisfies ThreadMessage);
    const timer = setTimeout(() => void w.terminate(), this.options.timeoutMs + 5_000);
    await exited;
    clearTimeout(timer);
  }

  private flush(): void {
    this.scheduled = false;
    const batch = this.queued;
    this.queued = [];
    if (batch.length > 0) this.thread().postMessage({ type: 'send', batch } satisfies ThreadMessage);
  }

  private settle(n: number, result: SendResult): void {
    const p = this.pending.get(n);
    if (!p) return;
    this.pending.delete(n);
    clearTimeout(p.timer);
    p.resolve(result);
  }

  private thread(): Worker {
    if (this.worker) return this.worker;
    const w = new Worker(this.entry, { workerData: this.options });
    w.on('message', (outcomes: Array<[number, SendResult]>) => {
      for (const [n, result] of outcomes) this.settle(n, result);
    });
    w.on('error', (e) => this.logger.error({ err: e }, 'the webhook delivery thread failed'));
    w.on('exit', () => {
      if (this.worker === w) this.worker = null;
      for (const n of [...this.pending.keys()]) this.settle(n, failure('the delivery thread exited'));
    });
    w.unref();
    return (this.worker = w);
  }
}

function failure(error: string): SendResult {
  return { ok: false, status: null, error, retryAfterMs: null, gone: false };
}
