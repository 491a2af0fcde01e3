import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import { Webhook } from 'standardwebhooks';
import { getFreePort } from '../upstream/ports';

export interface ReceivedEvent {
  /** The `webhook-id` header. */
  webhookId: string;
  /** The CloudEvent as sent. */
  event: { id: string; type: string; subject?: string; source: string; data: Record<string, unknown> };
  at: number;
}

export interface WebhookReceiver {
  url: string;
  port: number;
  /** Verified deliveries, in arrival order (duplicates included). */
  received: ReceivedEvent[];
  /** Requests whose signature did not verify (answered 401). */
  rejected: number;
  /** The subscription's secret, once known; until then every request is rejected. */
  secret: string | null;
  /** What to answer: 204, or a status (e.g. 503, 410) with optional headers; `delayMs` first. */
  answer: { status: number; headers?: Record<string, string>; delayMs?: number };
  /** Closes the port (connections refused) / listens again on the same port. */
  down(): Promise<void>;
  up(): Promise<void>;
  /** Resolves once `predicate` holds for the received list, or rejects after `timeoutMs`. */
  waitFor(predicate: (r: ReceivedEvent[]) => boolean, timeoutMs?: number): Promise<ReceivedEvent[]>;
  stop(): Promise<void>;
}

/**
 * A webhook receiver as a vendor writes one: a plain HTTP server that verifies every request
 * with the Standard Webhooks library (`standardwebhooks`) before it accepts it.
 */
export async function startWebhookReceiver(): Promise<WebhookReceiver> {
  const port = await getFreePort();
  let server: Server | null = null;
  const receiver: WebhookReceiver = {
    url: `http://127.0.0.1:${port}/hooks`,
    port,
    received: [],
    rejected: 0,
    secret: null,
    answer: { status: 204 },
    down: async () => {
      const s = server;
      server = null;
      if (!s) return;
      s.closeAllConnections();
      await new Promise<void>((r) => s.close(() => r()));
    },
    up: async () => {
      if (server) return;
      const s = createServer((req, res) => void handle(req, res));
      s.keepAliveTimeout = 1000;
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject);
        s.listen(port, '127.0.0.1', () => resolve());
      });
      server = s;
    },
    waitFor: async (predicate, timeoutMs = 30_000) => {
      const until = Date.now() + timeoutMs;
      while (!predicate(receiver.received)) {
        if (Date.now() > until)
          throw new Error(
            `the receiver did not get what was expected within ${timeoutMs} ms: got ${describe()}`,
          );
        await new Promise((r) => setTimeout(r, 50));
      }
      return receiver.received;
    },
    stop: () => receiver.down(),
  };
  const describe = () => JSON.stringify(receiver.received.map((r) => r.event.type));

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks).toString('utf8');
    const { status, headers, delayMs } = receiver.answer;
    if (delayMs) await new Promise((r) => setTimeout(r, delayMs));
    let event: ReceivedEvent['event'];
    try {
      if (!receiver.secret) throw new Error('no secret yet');
      event = new Webhook(receiver.secret).verify(body, {
        'webhook-id': String(req.headers['webhook-id']),
        'webhook-timestamp': String(req.headers['webhook-timestamp']),
        'webhook-signature': String(req.headers['webhook-signature']),
      }) as ReceivedEvent['event'];
    } catch {
      receiver.rejected++;
      res.writeHead(401).end('bad signature');
      return;
    }
    if (status < 200 || status >= 300) {
      res.writeHead(status, headers).end('not now');
      return;
    }
    receiver.received.push({ webhookId: String(req.headers['webhook-id']), event, at: Date.now() });
    res.writeHead(status, headers).end();
  }

  await receiver.up();
  return receiver;
}
