import { parentPort, workerData } from 'node:worker_threads';
import { SendOptions, SendResult, WebhookSender } from './webhook.sender';
import type { ThreadMessage } from './threaded-webhook.sender';

/**
 * The delivery thread (ThreadedWebhookSender): signs and posts what the gateway's event loop
 * hands it, with the same WebhookSender (timeouts, no redirects, capped answers, guarded DNS),
 * and hands the outcomes back in batches, one message per turn of its own loop.
 */
const port = parentPort!;
const sender = new WebhookSender(workerData as SendOptions);
let outcomes: Array<[number, SendResult]> = [];
let flushing = false;
let inFlight = 0;
let closing = false;

function flush(): void {
  flushing = false;
  const batch = outcomes;
  outcomes = [];
  if (batch.length > 0) port.postMessage(batch);
  if (closing && inFlight === 0) void sender.close().finally(() => port.close());
}

port.on('message', (message: ThreadMessage) => {
  if (message.type === 'close') {
    // Ends once every request it holds is answered and its outcome handed back.
    closing = true;
    if (!flushing) flush();
    return;
  }
  for (const r of message.batch) {
    inFlight++;
    void sender.send(r.url, r.secrets, r.id, r.body, new Date(r.at)).then((result) => {
      inFlight--;
      outcomes.push([r.n, result]);
      if (!flushing) {
        flushing = true;
        setImmediate(flush);
      }
    });
  }
});
