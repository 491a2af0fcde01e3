import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createCapturingLogger } from '@gatehouse/observability';
import { startWebhookReceiver, WebhookReceiver } from '@gatehouse/testing/events';
import { ThreadedWebhookSender } from './threaded-webhook.sender';

/** The compiled thread entry the built gateway runs (scripts/test.sh builds before the tests). */
const ENTRY = join(resolve(__dirname, '../../..'), 'dist/libs/events/src/webhook-sender.thread.js');

/** The delivery thread against a real receiver that verifies with the standardwebhooks package. */
describe('ThreadedWebhookSender', () => {
  let receiver: WebhookReceiver;
  let sender: ThreadedWebhookSender;

  beforeAll(async () => {
    if (!existsSync(ENTRY))
      throw new Error(`the compiled thread entry is missing (${ENTRY}): run npm run build`);
    receiver = await startWebhookReceiver();
    receiver.secret = 'whsec_' + Buffer.from('a secret of thirty-two bytes....').toString('base64');
  });
  beforeEach(() => {
    sender = new ThreadedWebhookSender(
      { timeoutMs: 2_000, allowPrivateTargets: true },
      createCapturingLogger('error').logger,
      ENTRY,
    );
  });
  afterEach(() => sender.close());
  afterAll(() => receiver.stop());

  const event = (id: string) =>
    JSON.stringify({ id, type: 'login.issued', time: new Date().toISOString(), data: {} });

  it('posts signed requests made in one turn of the loop, each answered with its own outcome', async () => {
    const before = receiver.received.length;
    const ids = Array.from({ length: 200 }, (_, i) => `evt-${i}`);
    const results = await Promise.all(
      ids.map((id) => sender.send(receiver.url, [receiver.secret!], id, event(id))),
    );
    expect(results.every((r) => r.ok && r.status === 204)).toBe(true);
    expect(new Set(receiver.received.slice(before).map((r) => r.event.id))).toEqual(new Set(ids));
    // A refused connection is an outcome too, not a rejection.
    const refused = await sender.send('http://127.0.0.1:1/hooks', [receiver.secret!], 'x', event('x'));
    expect(refused).toMatchObject({ ok: false, status: null, gone: false });
    expect(refused.ok === false && refused.error).toMatch(/ECONNREFUSED/);
  });

  it('fails the requests of a thread that dies, and the next request starts a new thread', async () => {
    receiver.answer = { status: 204, delayMs: 1_000 };
    try {
      const inFlight = sender.send(receiver.url, [receiver.secret!], 'slow', event('slow'));
      await new Promise((r) => setTimeout(r, 200));
      await (sender as unknown as { worker: { terminate(): Promise<number> } }).worker.terminate();
      expect(await inFlight).toMatchObject({ ok: false, error: 'the delivery thread exited' });
    } finally {
      receiver.answer = { status: 204 };
    }
    expect(await sender.send(receiver.url, [receiver.secret!], 'after', event('after'))).toEqual({
      ok: true,
      status: 204,
    });
  });

  it('closes: the thread ends once its requests are answered', async () => {
    receiver.answer = { status: 204, delayMs: 300 };
    try {
      const inFlight = sender.send(receiver.url, [receiver.secret!], 'last', event('last'));
      await new Promise((r) => setTimeout(r, 50));
      await sender.close();
      expect(await inFlight).toEqual({ ok: true, status: 204 });
    } finally {
      receiver.answer = { status: 204 };
    }
  });
});
